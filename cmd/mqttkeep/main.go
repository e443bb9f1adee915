// Command mqttkeep is the command-line face of the mqttkeep library: a
// scripted demo of its keepalive and reconnect behaviour on an embedded
// broker, mosquitto_sub/mosquitto_pub-like sub and pub commands, and an
// embedded broker for local experiments. Run "mqttkeep --help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
