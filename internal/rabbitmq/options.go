package rabbitmq

import "time"

// Defaults of the options.
const (
	// DefaultUser and DefaultPassword are the credentials of the user a
	// node creates on its first start, which MQTT connections without a
	// user name also get while anonymous connections are allowed.
	DefaultUser     = "guest"
	DefaultPassword = "guest"
	// DefaultStartTimeout bounds a node's start (or restart) until its
	// MQTT listener accepts a CONNECT, and a cluster's formation: generous
	// for a loaded 2-core machine, where one cold start takes about 14 s.
	DefaultStartTimeout = 180 * time.Second
	// DefaultStopTimeout bounds a clean stop (SIGTERM) before SIGKILL.
	DefaultStopTimeout = 30 * time.Second
	// ctlTimeout bounds one rabbitmqctl call.
	ctlTimeout = 60 * time.Second
)

// Option configures a node or every node of a cluster.
type Option func(*config)

type config struct {
	user, pass   string
	noAnonymous  bool
	quorum       bool
	startTimeout time.Duration
	stopTimeout  time.Duration
	lines        []string
}

func newConfig(opts []Option) config {
	c := config{user: DefaultUser, pass: DefaultPassword,
		startTimeout: DefaultStartTimeout, stopTimeout: DefaultStopTimeout}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithUser sets the user a node creates on its first start
// (default_user, default_pass; an administrator with every permission on
// the virtual host "/") and the credentials MQTT connections without a
// user name get (mqtt.default_user, mqtt.default_pass). Defaults to
// guest/guest. The password is written only to the node's configuration
// file (mode 0600) and never logged.
func WithUser(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithoutAnonymous sets mqtt.allow_anonymous = false: a CONNECT without
// a user name is then refused (return code 4). By default anonymous
// connections are allowed and get the [WithUser] credentials.
func WithoutAnonymous() Option {
	return func(c *config) { c.noAnonymous = true }
}

// WithQuorumSessions sets mqtt.durable_queue_type = quorum: the QoS 1
// queue of a persistent session (Clean Session 0) is then a quorum queue
// (Raft-replicated over up to the cluster's nodes, and written to disk
// before the PUBACK) instead of a classic durable queue. Clean sessions
// keep classic queues either way.
func WithQuorumSessions() Option {
	return func(c *config) { c.quorum = true }
}

// WithStartTimeout bounds each start, restart and the formation of a
// cluster (default DefaultStartTimeout).
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.startTimeout = d
		}
	}
}

// WithStopTimeout bounds a clean stop before the node is killed (default
// DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.stopTimeout = d
		}
	}
}

// WithConfigLines appends lines to the node's rabbitmq.conf (new-style
// "key = value" settings), after the ones this package writes.
func WithConfigLines(lines ...string) Option {
	return func(c *config) { c.lines = append(c.lines, lines...) }
}
