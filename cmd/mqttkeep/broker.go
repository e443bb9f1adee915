package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// defaultBrokerAddr is -l's default: loopback only, the usual MQTT port.
const defaultBrokerAddr = "127.0.0.1:1883"

// runBroker is "mqttkeep broker": an in-memory mochi-mqtt broker that lets
// every client in, logging connects and disconnects, until Ctrl-C.
// (internal/testbroker only listens on a random port, so this uses mochi
// directly.)
func runBroker(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("broker")
	var addr string
	for _, n := range []string{"l", "listen"} {
		fs.StringVar(&addr, n, defaultBrokerAddr, "listen address")
	}
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

	srv := mqtt.New(&mqtt.Options{
		InlineClient: false,
		Logger:       slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := srv.AddHook(&logHook{w: s.err}, nil); err != nil {
		fmt.Fprintf(s.err, "mqttkeep broker: %v\n", err)
		return exitFail
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil { // binds the address
		fmt.Fprintf(s.err, "mqttkeep broker: %v\n", err)
		_ = srv.Close()
		return exitFail
	}
	if err := srv.Serve(); err != nil {
		fmt.Fprintf(s.err, "mqttkeep broker: %v\n", err)
		_ = srv.Close()
		return exitFail
	}
	fmt.Fprintf(s.err, "mqttkeep broker: listening on %s (mqtt://%s); Ctrl-C to stop\n", tcp.Address(), tcp.Address())
	<-ctx.Done()
	_ = srv.Close()
	fmt.Fprintf(s.err, "mqttkeep broker: stopped\n")
	return exitOK
}

// logHook lets every client in (mochi refuses everyone unless a hook
// allows them; its own auth.AllowHook would pull gopkg.in/yaml.v3 into
// go.mod) and reports clients connecting and disconnecting. It never logs
// a password.
type logHook struct {
	mqtt.HookBase
	w io.Writer
}

func (h *logHook) ID() string { return "mqttkeep-log" }

func (h *logHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnConnectAuthenticate lets every client in.
func (h *logHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck allows every publish and subscription.
func (h *logHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *logHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	fmt.Fprintf(h.w, "mqttkeep broker: client %q connected from %s (MQTT %d, clean start %t, keep alive %ds)\n",
		cl.ID, cl.Net.Remote, cl.Properties.ProtocolVersion, cl.Properties.Clean, cl.State.Keepalive)
}

func (h *logHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
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
