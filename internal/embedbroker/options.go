package embedbroker

import (
	"crypto/tls"
	"log/slog"

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
