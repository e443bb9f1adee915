package mqttkeep

import "time"

// The reconnect and dialing options: how long to wait between attempts
// (see retry.go for the policy) and how connections are opened.

// WithBackoff sets the wait between attempts that reached MQTT and failed
// (a retryable CONNACK refusal, no CONNACK within the connect timeout, a
// connection that dropped before any exchange). Attempts that did not
// reach MQTT follow [WithDialRetry]. Default: [DefaultBackoff] (full
// jitter over 500 ms doubling up to 60 s).
func WithBackoff(b Backoff) Option {
	return optionFunc(func(c *config) error {
		if err := b.validate(); err != nil {
			return optionError("WithBackoff", "%v", err)
		}
		c.backoff = b
		return nil
	})
}

// WithDialRetry sets the interval of the retry grid for attempts that did
// not reach MQTT (the port refuses, the host is unreachable, the dial
// timed out) and for the first attempt after a connection that carried an
// exchange was lost: the client is back at most one interval after the
// broker is, and the clients of one process come back evenly spread over
// one interval. At least 10 ms. Default: [DefaultDialRetry] (900 ms).
func WithDialRetry(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 10*time.Millisecond {
			return optionError("WithDialRetry", "%v, want at least 10ms", d)
		}
		c.dialRetry = d
		return nil
	})
}

// WithBackoffFunc replaces the whole reconnect policy: the wait before
// every retry is f(n), where n counts the attempts since the last
// connection that carried an exchange (1 for the first retry after a
// loss). Negative results count as zero. Default: none (the policy of
// [WithBackoff] and [WithDialRetry]).
func WithBackoffFunc(f func(retry int) time.Duration) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return optionError("WithBackoffFunc", "nil function")
		}
		c.backoffFunc = f
		return nil
	})
}

// WithMaxFailedResumes sets how many connections in a row may end with a
// protocol failure (a malformed packet, a protocol violation) before any
// exchange right after resuming the session — a poisoned session, whose
// broker sends the same bad packet again on every connection — before the
// client gives the session up and connects with Clean Start. It is
// counted in [Stats.SessionsAbandoned] and the DisconnectEvent says
// NewSession. 0 never gives up. Default: [DefaultMaxFailedResumes] (3).
func WithMaxFailedResumes(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 {
			return optionError("WithMaxFailedResumes", "%d, want 0 or more", n)
		}
		c.poisonLimit = n
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
