package mqttkeep

import "time"

// ReconnectPolicy sets the package doc's Reconnecting; zero fields: defaults.
type ReconnectPolicy struct {
	// Backoff is the wait after failures at MQTT. Zero: [DefaultBackoff].
	Backoff Backoff
	// DialRetry is the grid after failures below MQTT, ≥ 10 ms ([DefaultDialRetry]).
	DialRetry time.Duration
	// Delay, if set, replaces both: the wait before retry n after a working connection.
	Delay func(retry int) time.Duration
	// MaxFailedResumes: broken connections before the session or message is given up.
	MaxFailedResumes int
	// RandomStart begins at a random server of [WithServer]'s list, not
	// the first, so that a fleet spreads over a cluster. Default: false.
	RandomStart bool
}

// WithReconnect sets the reconnect policy. Default: the zero ReconnectPolicy.
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
		c.randomStart = p.RandomStart
		return nil
	})
}

// WithDialer replaces dialing. Default: TCP, TLS or WebSocket by scheme.
func WithDialer(dial DialFunc) Option {
	return optionFunc(func(c *config) error {
		if dial == nil {
			return optionError("WithDialer", "nil dial function")
		}
		c.dial = dial
		return nil
	})
}
