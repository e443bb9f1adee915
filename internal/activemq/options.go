package activemq

import "time"

// Defaults of the options.
const (
	// DefaultStartTimeout bounds a broker's start (or restart) until its
	// MQTT connector accepts a CONNECT: generous for a loaded 2-core
	// machine, where the JVM and broker start in about 2 to 3 s.
	DefaultStartTimeout = 90 * time.Second
	// DefaultStopTimeout bounds a clean stop (SIGTERM) before SIGKILL.
	DefaultStopTimeout = 30 * time.Second
	// DefaultHeap is the JVM's maximum heap (-Xmx), in MiB.
	DefaultHeap = 256
)

// Option configures a broker.
type Option func(*config)

type config struct {
	user, pass   string
	startTimeout time.Duration
	stopTimeout  time.Duration
	heapMiB      int
	xml          []string
}

func newConfig(opts []Option) config {
	c := config{startTimeout: DefaultStartTimeout, stopTimeout: DefaultStopTimeout, heapMiB: DefaultHeap}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithUser makes the broker require a user name and password
// (simpleAuthenticationPlugin with one user, anonymous access off). By
// default every connection is accepted, whatever its credentials. The
// password is written only to the broker's activemq.xml (mode 0600) and
// never logged.
func WithUser(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithStartTimeout bounds each start and restart (default
// DefaultStartTimeout).
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.startTimeout = d
		}
	}
}

// WithStopTimeout bounds a clean stop before the broker is killed
// (default DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.stopTimeout = d
		}
	}
}

// WithHeap sets the JVM's maximum heap in MiB (default DefaultHeap).
func WithHeap(mib int) Option {
	return func(c *config) {
		if mib > 0 {
			c.heapMiB = mib
		}
	}
}

// WithBrokerXML adds elements inside the <broker> element of
// activemq.xml (e.g. a <destinationPolicy>), after the ones this package
// writes.
func WithBrokerXML(elements ...string) Option {
	return func(c *config) { c.xml = append(c.xml, elements...) }
}
