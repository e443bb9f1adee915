package mqttkeep

import "time"

// ReconnectPolicy is how the client waits between connection attempts.
// Every field's zero value means its default, so a policy names only
// what it changes. Two kinds of failure have their own schedule (the
// package doc's "Reconnecting" says why):
//
//   - attempts that did not reach MQTT (the port refuses, no route, the
//     dial timed out), and the first attempt after a connection that
//     carried an exchange was lost, follow a grid of DialRetry: the client
//     is back at most one interval after the broker is, and the clients of
//     one process come back spread evenly over one interval;
//   - attempts that reached MQTT and failed (a retryable CONNACK refusal,
//     no CONNACK within the connect timeout, a connection that dropped
//     before any exchange or because the broker broke the protocol) back
//     off by Backoff, which starts over once a connection carried an
//     exchange.
type ReconnectPolicy struct {
	// Backoff is the wait after attempts that reached MQTT and failed.
	// Zero: [DefaultBackoff] (full jitter over 500 ms doubling up to 60 s).
	Backoff Backoff
	// DialRetry is the interval of the retry grid, at least 10 ms. Zero:
	// [DefaultDialRetry] (900 ms).
	DialRetry time.Duration
	// Delay, when set, replaces both schedules: the wait before every
	// retry is Delay(n), n counting the attempts since the last connection
	// that carried an exchange (1 for the first retry after a loss).
	// Negative results count as zero.
	Delay func(retry int) time.Duration
	// MaxFailedResumes is how many connections in a row may end with the
	// broker breaking the protocol before the client gives up what causes
	// it: a resumed session whose broker sends the same bad packet on
	// every connection (the client then starts a new session, counted in
	// [Stats.SessionsAbandoned], the DisconnectEvent saying NewSession),
	// or a message of ours whose echo or acknowledgement is that packet
	// (it fails with [ErrMessagePoisoned]). Zero:
	// [DefaultMaxFailedResumes] (3).
	MaxFailedResumes int
}

// WithReconnect sets the reconnect policy. Default: the zero
// [ReconnectPolicy], every field at its default.
func WithReconnect(p ReconnectPolicy) Option {
	return optionFunc(func(c *config) error {
		if p.Backoff != (Backoff{}) {
			if err := p.Backoff.validate(); err != nil {
				return optionError("WithReconnect", "Backoff: %v", err)
			}
			c.backoff = p.Backoff
		}
		switch {
		case p.DialRetry < 0 || (p.DialRetry > 0 && p.DialRetry < 10*time.Millisecond):
			return optionError("WithReconnect", "DialRetry %v, want at least 10ms (or 0 for the default)", p.DialRetry)
		case p.DialRetry > 0:
			c.dialRetry = p.DialRetry
		}
		switch {
		case p.MaxFailedResumes < 0:
			return optionError("WithReconnect", "MaxFailedResumes %d, want at least 1 (or 0 for the default)", p.MaxFailedResumes)
		case p.MaxFailedResumes > 0:
			c.poisonLimit = p.MaxFailedResumes
		}
		c.backoffFunc = p.Delay
		return nil
	})
}

// WithDialer replaces how the network connection is opened (proxies, unix
// sockets, in-memory pipes in tests); it is called with the server URL and
// must return a connected net.Conn. Default: a dialer for the URL's scheme
// (TCP, TLS or WebSocket; see [WithServer]).
func WithDialer(dial DialFunc) Option {
	return optionFunc(func(c *config) error {
		if dial == nil {
			return optionError("WithDialer", "nil dial function")
		}
		c.dial = dial
		return nil
	})
}
