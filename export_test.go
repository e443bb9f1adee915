package mqttkeep

import "time"

// WithStableAfter sets how long a connection must stay up before the
// backoff starts again from the first retry ([DefaultStableAfter]
// otherwise). For tests that scale the reconnect policy down in time.
func WithStableAfter(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		c.stableAfter = d
		return nil
	})
}
