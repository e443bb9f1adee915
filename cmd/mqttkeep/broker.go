package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// defaultBrokerAddr is -l's default: loopback only, the usual MQTT port.
const defaultBrokerAddr = "127.0.0.1:1883"

// runBroker is "mqttkeep broker": a mochi-mqtt broker that lets every
// client in, logging connects and disconnects, until Ctrl-C; in memory,
// or with --data in a directory that a restart (or a crash) finds again.
// It is the test kit's broker core (internal/embedbroker), which links no
// package testing.
func runBroker(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("broker")
	var addr, data string
	for _, n := range []string{"l", "listen"} {
		fs.StringVar(&addr, n, defaultBrokerAddr, "listen address")
	}
	fs.StringVar(&data, "data", "", "data directory")
	if code, done := parseArgs(fs, "broker", args, s, nil); done {
		return code
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageFail(s, "broker", fmt.Sprintf("-l %q: want HOST:PORT, e.g. 127.0.0.1:1883 or :1883 (all interfaces)", addr), nil)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usageFail(s, "broker", fmt.Sprintf("-l %q: port %q is not a number from 0 to 65535", addr, port), nil)
	}

	opts := []embedbroker.Option{
		embedbroker.WithLogger(slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		embedbroker.WithHooks(func() []mqtt.Hook { return []mqtt.Hook{&logHook{w: s.err}} }),
		embedbroker.WithSysTopicInterval(1), // mochi's default: $SYS/# stays current
	}
	kept := "in memory only"
	if data != "" {
		opts = append(opts, embedbroker.WithDataDir(data))
		kept = "state kept in " + data
	}
	b, err := embedbroker.New(opts...)
	if err != nil {
		fmt.Fprintf(s.err, "mqttkeep broker: %v\n", err)
		return exitFail
	}
	if err := b.Listen(addr); err != nil {
		fmt.Fprintf(s.err, "mqttkeep broker: %v\n", err)
		b.Close()
		return exitFail
	}
	fmt.Fprintf(s.err, "mqttkeep broker: listening on %s (mqtt://%s), %s; Ctrl-C to stop\n", b.Addr(), b.Addr(), kept)
	<-ctx.Done()
	b.Shutdown() // DISCONNECT 0x8B (server shutting down) to every client
	fmt.Fprintf(s.err, "mqttkeep broker: stopped\n")
	return exitOK
}

// logHook reports clients connecting and disconnecting (embedbroker's
// own hook lets every client in). It never logs a password.
type logHook struct {
	mqtt.HookBase
	w io.Writer
}

func (h *logHook) ID() string { return "mqttkeep-log" }

func (h *logHook) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablished || b == mqtt.OnDisconnect
}

func (h *logHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	fmt.Fprintf(h.w, "mqttkeep broker: client %q connected from %s (MQTT %d, clean start %t, keep alive %ds)\n",
		cl.ID, cl.Net.Remote, cl.Properties.ProtocolVersion, cl.Properties.Clean, cl.State.Keepalive)
}

func (h *logHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if cl.Net.Conn == nil { // restored from --data at start, not connected
		if !expire {
			fmt.Fprintf(h.w, "mqttkeep broker: client %q: session restored\n", cl.ID)
		}
		return
	}
	why := "disconnected"
	if err != nil {
		why = "disconnected: " + err.Error()
	}
	kept := "session kept"
	if expire {
		kept = "session ended"
	}
	fmt.Fprintf(h.w, "mqttkeep broker: client %q %s (%s)\n", cl.ID, why, kept)
}
