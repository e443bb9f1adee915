package rabbitmq

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// ErrClosed is matched by the error of an operation on a closed node or
// cluster.
var ErrClosed = errors.New("rabbitmq: node closed")

// probeTimeout bounds one readiness CONNECT.
const probeTimeout = 3 * time.Second

// readyPoll is the pause between two readiness probes.
const readyPoll = 100 * time.Millisecond

// Node is one RabbitMQ node run by this package. Its methods are safe for
// concurrent use.
type Node struct {
	in      install
	cfg     config
	name    string // NAME@localhost
	dir     string
	epmd    *epmd
	ownEpmd bool           // the node's own epmd, stopped by Close
	cluster *Cluster       // nil for a standalone node
	log     *childproc.Log // the node's console output, appended to by every start

	life sync.Mutex // serialises start, Stop, Kill, Restart and Close

	mu        sync.Mutex // guards the fields below
	mqttPort  int
	amqpPort  int
	distPort  int
	proc      *childproc.Process
	starts    int
	closed    bool
	lastStart time.Duration
}

var nodeSeq atomic.Int64

// nodeName returns a node name unique on this machine while this process
// lives: the process id and a sequence number.
func nodeName(kind string) string {
	return fmt.Sprintf("mqk%d%s%d@localhost", os.Getpid(), kind, nodeSeq.Add(1))
}

// Start starts a standalone node in the test's temporary directory and
// returns once its MQTT listener accepts a 3.1.1 CONNECT (within
// [WithStartTimeout]). The node is stopped when the test ends, and the end
// of its log is shown if the test failed (or always with
// MQTTKEEP_RABBITMQ_LOG=1). A missing RabbitMQ skips the test (fails it
// when MQTTKEEP_REQUIRE_RABBITMQ=1).
func Start(tb testing.TB, opts ...Option) *Node {
	tb.Helper()
	if _, ok := requireInstall(tb); !ok {
		return nil
	}
	n, err := NewNode(tb.TempDir(), opts...)
	if err != nil {
		tb.Fatal(err)
		return nil
	}
	tb.Cleanup(func() {
		_ = n.Close()
		showLog(tb, n)
	})
	return n
}

// NewNode starts a standalone node (and its own epmd) in dir, which
// must exist and stay until Close, and returns once it is ready. The
// caller must call Close.
func NewNode(dir string, opts ...Option) (*Node, error) {
	in, err := findInstall()
	if err != nil {
		return nil, err
	}
	cfg := newConfig(opts)
	cookie, err := newCookie()
	if err != nil {
		return nil, err
	}
	e, err := startEpmd(in.epmd, dir)
	if err != nil {
		return nil, err
	}
	n, err := newNode(in, cfg, filepath.Join(dir, "node"), nodeName("n"), cookie, e)
	if err != nil {
		e.stop()
		return nil, err
	}
	n.ownEpmd = true
	if err := n.startFresh(time.Now().Add(cfg.startTimeout)); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// newCookie returns a random Erlang cookie.
func newCookie() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "MQK" + strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// newNode lays out dir for a node (nothing is started).
func newNode(in install, cfg config, dir, name, cookie string, e *epmd) (*Node, error) {
	for _, d := range []string{"home", "mnesia", "log", "plugins-expand"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"home/.erlang.cookie", cookie, 0o400},
		{"enabled_plugins", "[rabbitmq_mqtt].\n", 0o600},
		{"rabbitmq-env.conf", "# empty: every setting comes from the environment\n", 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return nil, err
		}
	}
	log, err := childproc.OpenLog(filepath.Join(dir, "console.log"), notePrefix)
	if err != nil {
		return nil, err
	}
	return &Node{in: in, cfg: cfg, name: name, dir: dir, epmd: e, log: log}, nil
}

// startFresh picks ports, writes the configuration, starts the node and
// waits until it is ready; it picks other ports and tries again while a
// start fails on a port taken in the meantime.
func (n *Node) startFresh(deadline time.Time) error {
	n.life.Lock()
	defer n.life.Unlock()
	for {
		ports, err := childproc.FreePorts(3, map[int]bool{n.epmd.port: true})
		if err != nil {
			return err
		}
		n.mu.Lock()
		n.mqttPort, n.amqpPort, n.distPort = ports[0], ports[1], ports[2]
		n.mu.Unlock()
		if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq.conf"), []byte(n.config()), 0o600); err != nil {
			return err
		}
		err = n.launchAndWait(deadline, false)
		if err == nil || !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
	}
}

// config returns the text of rabbitmq.conf.
func (n *Node) config() string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	w("# written by internal/rabbitmq for %s", n.name)
	w("listeners.tcp.local = 127.0.0.1:%d", n.amqpPort)
	w("mqtt.listeners.tcp.local = 127.0.0.1:%d", n.mqttPort)
	w("mqtt.allow_anonymous = %t", !n.cfg.noAnonymous)
	w("mqtt.default_user = %s", n.cfg.user)
	w("mqtt.default_pass = %s", n.cfg.pass)
	w("default_user = %s", n.cfg.user)
	w("default_pass = %s", n.cfg.pass)
	w("default_user_tags.administrator = true")
	w("loopback_users = none")
	if n.cfg.quorum {
		w("mqtt.durable_queue_type = quorum")
	}
	w("log.console = true")
	w("log.console.level = info")
	w("log.file = false")
	for _, l := range n.cfg.lines {
		w("%s", l)
	}
	return s.String()
}

// env returns the environment of the node's processes (the server and
// rabbitmqctl).
func (n *Node) env() []string {
	d := func(p string) string { return filepath.Join(n.dir, p) }
	n.mu.Lock()
	dist := n.distPort
	n.mu.Unlock()
	return append(cleanEnv(),
		"HOME="+d("home"),
		"ERL_EPMD_PORT="+strconv.Itoa(n.epmd.port),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_CRASH_DUMP_SECONDS=0",
		// The server script then execs the VM instead of waiting for it
		// in a shell: the process started is beam.smp.
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_CONFIG_FILE="+d("rabbitmq"), // reads rabbitmq.conf
		"RABBITMQ_ADVANCED_CONFIG_FILE="+d("advanced.config"),
		"RABBITMQ_CONF_ENV_FILE="+d("rabbitmq-env.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+d("enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+d("mnesia"),
		"RABBITMQ_LOG_BASE="+d("log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_FEATURE_FLAGS_FILE="+d("feature_flags"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+d("plugins-expand"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	)
}

var errAddrInUse = errors.New("address already in use")

// launchAndWait starts the node's process and waits until it is ready.
// A first start (restart false) returns an error wrapping errAddrInUse
// when a port was taken, for startFresh to pick others. A restart keeps
// the ports, so it tries again on them until the deadline, and a node of
// a cluster is then waited for until it has rejoined. The caller holds
// n.life.
func (n *Node) launchAndWait(deadline time.Time, restart bool) error {
	for {
		began := time.Now()
		err := n.launch()
		if err == nil {
			err = n.waitReady(deadline)
		}
		if err == nil && restart && n.cluster != nil {
			err = n.cluster.waitRunning(n, deadline)
		}
		if err == nil && restart && n.cluster == nil && n.cfg.quorum {
			err = n.waitQuorumLeaders(deadline)
		}
		if err == nil {
			n.mu.Lock()
			n.lastStart = time.Since(began)
			n.mu.Unlock()
			n.note(fmt.Sprintf("ready after %v", n.StartDuration().Round(time.Millisecond)))
			return nil
		}
		if !restart || !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// launch starts the node's process. The caller holds n.life.
func (n *Node) launch() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.starts++
	num := n.starts
	mqtt, amqp, dist := n.mqttPort, n.amqpPort, n.distPort
	n.mu.Unlock()
	n.note(fmt.Sprintf("start #%d of %s: MQTT 127.0.0.1:%d, AMQP %d, distribution %d, epmd %d",
		num, n.name, mqtt, amqp, dist, n.epmd.port))
	p, err := childproc.Start(n.in.server, []string{n.in.server, "-noinput"}, n.env(), n.dir, n.log.File())
	if err != nil {
		return fmt.Errorf("rabbitmq: %s: %w", n.name, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// waitReady waits until the node's MQTT listener accepts a CONNECT; it
// kills the node if the deadline passes first. The caller holds n.life.
func (n *Node) waitReady(deadline time.Time) error {
	n.mu.Lock()
	p, num := n.proc, n.starts
	n.mu.Unlock()
	var last error
	for {
		if p.Poll() {
			n.clearProc(p)
			err := fmt.Errorf("rabbitmq: node %s exited during start-up (%s)", n.name, p.Describe())
			if n.logContainsSince(num, "eaddrinuse") {
				err = fmt.Errorf("%w: %w", err, errAddrInUse)
			}
			return n.withLog(err)
		}
		last = n.Probe(probeTimeout)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			n.killLocked()
			return n.withLog(fmt.Errorf("rabbitmq: node %s not ready in time (the last CONNECT to %s: %v)",
				n.name, n.MQTTAddr(), last))
		}
		time.Sleep(readyPoll)
	}
}

// Probe sends one MQTT 3.1.1 CONNECT (clean session, the node's
// credentials) to the node and returns nil if a CONNACK accepted it.
func (n *Node) Probe(timeout time.Duration) error {
	return mqtt311.Probe(n.MQTTAddr(), n.Connect("mqttkeep-ready-"+strings.SplitN(n.name, "@", 2)[0], true), timeout)
}

// Connect returns a 3.1.1 CONNECT for clientID with the node's
// credentials.
func (n *Node) Connect(clientID string, cleanSession bool) mqtt311.Connect {
	return mqtt311.Connect{ClientID: clientID, CleanSession: cleanSession,
		Username: n.cfg.user, Password: []byte(n.cfg.pass)}
}

// Name returns the node's Erlang node name, "NAME@localhost".
func (n *Node) Name() string { return n.name }

// MQTTAddr returns "127.0.0.1:PORT" of the MQTT listener; it stays the
// same across Stop, Kill and Restart.
func (n *Node) MQTTAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.mqttPort))
}

// AMQPAddr returns "127.0.0.1:PORT" of the AMQP 0-9-1 listener.
func (n *Node) AMQPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.amqpPort))
}

// DistPort returns the node's Erlang distribution port.
func (n *Node) DistPort() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.distPort
}

// Credentials returns the user name and password set with [WithUser].
func (n *Node) Credentials() (user, pass string) { return n.cfg.user, n.cfg.pass }

// Dir returns the node's directory (rabbitmq.conf, console.log, mnesia/).
func (n *Node) Dir() string { return n.dir }

// Version returns RabbitMQ's version, e.g. "3.10.8".
func (n *Node) Version() string { return n.in.version }

// PID returns the process id of the node's beam.smp, or 0 when it is not
// running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.Pid()
}

// Running reports whether the node's process is running (it may still
// be starting).
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	return p != nil && !p.Poll()
}

// StartDuration returns how long the last successful start or restart
// took until the node was ready (for a cluster's node restarted, until it
// had rejoined).
func (n *Node) StartDuration() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastStart
}

// Stop stops the node cleanly (SIGTERM: RabbitMQ closes its connections,
// stops its queues and writes its state) and waits for its process to
// exit; if it has not within [WithStopTimeout], it is killed and Stop
// says so. Stop does nothing when the node is not running.
func (n *Node) Stop() error {
	n.life.Lock()
	defer n.life.Unlock()
	return n.stopLocked()
}

func (n *Node) stopLocked() error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	n.note("SIGTERM")
	p.Signal(syscall.SIGTERM)
	if p.Wait(n.cfg.stopTimeout) {
		n.note("exited: " + p.Describe())
		p.KillGroup() // helpers that outlived the VM, if any
		n.clearProc(p)
		return nil
	}
	n.killLocked()
	return fmt.Errorf("rabbitmq: node %s did not stop within %v of SIGTERM and was killed", n.name, n.cfg.stopTimeout)
}

// Kill sends SIGKILL to the node's beam.smp (and its helper processes)
// and waits for it to exit: no clean shutdown, clients see their
// connections reset, cluster peers see the node down. On a standalone
// node a quorum queue declared less than about a second before is lost
// (see [Node.Flush]). Kill does nothing when the node is not running.
func (n *Node) Kill() error {
	n.life.Lock()
	defer n.life.Unlock()
	return n.killLocked()
}

func (n *Node) killLocked() error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	n.note("SIGKILL")
	p.KillGroup()
	if !p.Wait(10 * time.Second) {
		return fmt.Errorf("rabbitmq: node %s (pid %d) still running 10 s after SIGKILL", n.name, p.Pid())
	}
	n.note("exited: " + p.Describe())
	n.clearProc(p)
	return nil
}

// Restart stops the node cleanly if it is running, starts it again on the
// same directory, name and ports (its database, so its users, durable
// queues and persistent sessions, survive) and waits until it is ready; a
// node of a cluster is also waited for until it has rejoined: its
// cluster_status lists as running every node of the cluster whose process
// runs. A standalone node with [WithQuorumSessions] is also waited for
// until each of its quorum queues has a leader (see waitQuorumLeaders).
// The whole is bounded by [WithStartTimeout].
func (n *Node) Restart() error {
	n.life.Lock()
	defer n.life.Unlock()
	if err := n.stopLocked(); err != nil {
		return err
	}
	return n.launchAndWait(time.Now().Add(n.cfg.startTimeout), true)
}

// Close stops the node (as Stop), and its own epmd for a standalone
// node. Later Restarts fail with ErrClosed. Close is idempotent.
func (n *Node) Close() error {
	n.life.Lock()
	defer n.life.Unlock()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	err := n.stopLocked()
	if n.ownEpmd {
		n.epmd.stop()
	}
	n.note("closed")
	_ = n.log.Close()
	return err
}

func (n *Node) clearProc(p *childproc.Process) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == p {
		n.proc = nil
	}
}
