package embedbroker

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
)

// Option configures a Broker.
type Option func(*config)

type config struct {
	serverKeepAlive    uint16
	serverKeepAliveSet bool
	maxPacketSize      uint32
	writesPending      int32
	tls                *tls.Config
	websocket          bool
	logger             *slog.Logger
	sysInterval        int64
	hooks              func() []mqtt.Hook
	openStore          func() (mqttkeep.Store, error)
}

// WithTLS makes the TCP listener speak TLS with cfg; URL then starts with
// mqtts:// (or wss:// with WithWebSocket).
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg }
}

// WithWebSocket makes the TCP listener carry MQTT over WebSocket (the
// "mqtt" subprotocol, any path); URL then starts with ws:// (or wss://
// with WithTLS) and ends with /mqtt.
func WithWebSocket() Option {
	return func(c *config) { c.websocket = true }
}

// WithServerKeepAlive makes every successful CONNACK carry Server Keep
// Alive = seconds, which mochi then enforces (it closes a connection
// silent for 1.5 times the keep alive). Zero is valid: no keep alive.
func WithServerKeepAlive(seconds uint16) Option {
	return func(c *config) {
		c.serverKeepAlive = seconds
		c.serverKeepAliveSet = true
	}
}

// WithMaximumPacketSize makes successful CONNACKs announce Maximum Packet
// Size = n, and mochi drops (closes, without DISCONNECT) a connection that
// sends a larger packet. Zero means no limit, and nothing is announced.
func WithMaximumPacketSize(n uint32) Option {
	return func(c *config) { c.maxPacketSize = n }
}

// WithOutboundQueue sets how many packets mochi queues for writing to one
// client (MaximumClientWritesPending, 8192 by default); a message for a
// client whose queue is full is dropped and counted by Dropped. Zero or
// less keeps the default.
func WithOutboundQueue(n int32) Option {
	return func(c *config) { c.writesPending = n }
}

// WithLogger gives mochi a logger; without one mochi logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithHooks adds the hooks newHooks returns to every mochi server the
// Broker starts (New, and each Restart), after the broker's own hook. A
// fresh set per server: mochi initialises a hook when it is added.
func WithHooks(newHooks func() []mqtt.Hook) Option {
	return func(c *config) { c.hooks = newHooks }
}

// WithSysTopicInterval makes mochi publish its $SYS topics (broker
// statistics) every seconds seconds. Without it, or with zero or less, it
// publishes them once at start and then once a day: tests have no use for
// them.
func WithSysTopicInterval(seconds int64) Option {
	return func(c *config) { c.sysInterval = seconds }
}

// WithDataDir makes the broker keep its state in the directory dir (a
// file store, package filestore; created if missing), so that it survives
// Stop, Restart, Close and a crash of the process: the sessions that
// outlive their connection (their subscriptions and the QoS 1/2 messages
// in flight to them or queued for them) and retained messages. What the
// broker acknowledged (a PUBACK or PUBREC, a SUBACK, an UNSUBACK) is on
// disk, synced, before the acknowledgement is written. One broker at a
// time may use a directory: New and Restart fail while another holds it.
// Without this option the broker keeps everything in memory.
func WithDataDir(dir string) Option {
	return func(c *config) {
		c.openStore = func() (mqttkeep.Store, error) {
			st, err := filestore.Open(dir)
			if err != nil {
				return nil, fmt.Errorf("data directory: %w", err)
			}
			return st, nil
		}
	}
}

// WithStore is WithDataDir on the store open returns; the benchmarks
// measure other stores with it (benchmarks/brokerstore).
func WithStore(open func() (mqttkeep.Store, error)) Option {
	return func(c *config) { c.openStore = open }
}
