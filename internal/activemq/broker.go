package activemq

import (
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

// ErrClosed is matched by the error of an operation on a closed broker.
var ErrClosed = errors.New("activemq: broker closed")

// probeTimeout bounds one readiness CONNECT; readyPoll is the pause
// between two.
const (
	probeTimeout = 3 * time.Second
	readyPoll    = 50 * time.Millisecond
)

// jvmOpens are the module options of Debian's /usr/bin/activemq for Java
// 17: Spring and XBean reflect into these packages.
var jvmOpens = []string{
	"--add-reads=java.xml=java.logging",
	"--add-opens=java.base/java.security=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.naming/javax.naming.spi=ALL-UNNAMED",
	"--add-opens=java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED",
	"--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED",
	"--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED",
}

// Broker is one ActiveMQ broker run by this package. Its methods are safe
// for concurrent use.
type Broker struct {
	in   install
	cfg  config
	name string
	dir  string
	log  *childproc.Log // the JVM's console output, appended to by every start

	life sync.Mutex // serialises start, Stop, Kill, Restart and Close

	mu        sync.Mutex // guards the fields below
	port      int
	proc      *childproc.Process
	starts    int
	closed    bool
	lastStart time.Duration
}

var brokerSeq atomic.Int64

// Start starts a broker in the test's temporary directory and returns
// once its MQTT connector accepts a 3.1.1 CONNECT (within
// [WithStartTimeout]). The broker is stopped when the test ends, and the
// end of its log is shown if the test failed (or always with
// MQTTKEEP_ACTIVEMQ_LOG=1). A missing ActiveMQ skips the test (fails it
// when MQTTKEEP_REQUIRE_ACTIVEMQ=1).
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	if !requireInstall(tb) {
		return nil
	}
	b, err := NewBroker(tb.TempDir(), opts...)
	if err != nil {
		tb.Fatal(err)
		return nil
	}
	tb.Cleanup(func() {
		_ = b.Close()
		showLog(tb, b)
	})
	return b
}

// NewBroker starts a broker in dir, which must exist and stay until
// Close, and returns once it is ready. The caller must call Close.
func NewBroker(dir string, opts ...Option) (*Broker, error) {
	in, err := findInstall()
	if err != nil {
		return nil, err
	}
	b := &Broker{in: in, cfg: newConfig(opts), dir: dir,
		name: fmt.Sprintf("mqk%dn%d", os.Getpid(), brokerSeq.Add(1))}
	if err := b.layout(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(b.cfg.startTimeout)
	b.life.Lock()
	defer b.life.Unlock()
	for {
		ports, err := childproc.FreePorts(1, nil)
		if err != nil {
			_ = b.log.Close()
			return nil, err
		}
		b.mu.Lock()
		b.port = ports[0]
		b.mu.Unlock()
		if err := os.WriteFile(filepath.Join(dir, "conf", "activemq.xml"), []byte(b.xml()), 0o600); err != nil {
			_ = b.log.Close()
			return nil, err
		}
		err = b.launchAndWait(deadline)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			b.closeLocked()
			return nil, err
		}
		// The port was taken after it was picked: another one.
	}
}

// layout creates the broker's directories and fixed files.
func (b *Broker) layout() error {
	for _, d := range []string{"conf", "data", "tmp", "lib"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o700); err != nil {
			return err
		}
	}
	// ActiveMQ adds ${activemq.base}/lib to its class path: the MQTT
	// codec that Debian's package lacks goes there.
	if err := os.Symlink(codecJar, filepath.Join(b.dir, "lib", filepath.Base(codecJar))); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Debian's ActiveMQ logs through log4j 1.2: everything to the
	// console, which is the broker's log file here.
	const log4j = `log4j.rootLogger=INFO, console
log4j.logger.org.apache.activemq.spring=WARN
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %-5p | %m | %c{1} | %t%n
`
	if err := os.WriteFile(filepath.Join(b.dir, "conf", "log4j.properties"), []byte(log4j), 0o600); err != nil {
		return err
	}
	log, err := childproc.OpenLog(filepath.Join(b.dir, "console.log"), notePrefix)
	if err != nil {
		return err
	}
	b.log = log
	return nil
}

// xml returns the text of activemq.xml.
func (b *Broker) xml() string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	data := filepath.Join(b.dir, "data")
	w(`<!-- written by internal/activemq for %s -->`, b.name)
	w(`<beans xmlns="http://www.springframework.org/schema/beans"`)
	w(`  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`)
	w(`  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd`)
	w(`  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">`)
	w(`  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="%s" dataDirectory="%s"`, b.name, escape(data))
	w(`      useJmx="false" persistent="true" advisorySupport="false" schedulerSupport="false">`)
	w(`    <persistenceAdapter><kahaDB directory="%s"/></persistenceAdapter>`, escape(filepath.Join(data, "kahadb")))
	if b.cfg.user != "" {
		w(`    <plugins><simpleAuthenticationPlugin anonymousAccessAllowed="false"><users>`)
		w(`      <authenticationUser username="%s" password="%s" groups="users,admins"/>`, escape(b.cfg.user), escape(b.cfg.pass))
		w(`    </users></simpleAuthenticationPlugin></plugins>`)
	}
	w(`    <transportConnectors>`)
	w(`      <transportConnector name="mqtt" uri="mqtt://127.0.0.1:%d"/>`, b.port)
	w(`    </transportConnectors>`)
	for _, x := range b.cfg.xml {
		w("    %s", x)
	}
	w(`  </broker>`)
	w(`</beans>`)
	return s.String()
}

// escape escapes s for an XML attribute.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

var errAddrInUse = errors.New("address already in use")

// launchAndWait starts the JVM and waits until the broker is ready. The
// caller holds b.life.
func (b *Broker) launchAndWait(deadline time.Time) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.starts++
	num, port := b.starts, b.port
	b.mu.Unlock()
	began := time.Now()
	b.note(fmt.Sprintf("start #%d of %s: MQTT 127.0.0.1:%d", num, b.name, port))
	d := func(p string) string { return filepath.Join(b.dir, p) }
	args := []string{b.in.java,
		"-Xms64m", fmt.Sprintf("-Xmx%dm", b.cfg.heapMiB),
		// A short-lived test broker: start fast rather than peak.
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Djava.awt.headless=true"}
	args = append(args, jvmOpens...)
	args = append(args,
		"-Dactivemq.classpath="+d("conf"),
		"-Dactivemq.home="+homeDir,
		"-Dactivemq.base="+b.dir,
		"-Dactivemq.conf="+d("conf"),
		"-Dactivemq.data="+d("data"),
		"-Djava.io.tmpdir="+d("tmp"),
		"-jar", runJar, "start", "xbean:file:"+d("conf/activemq.xml"))
	p, err := childproc.Start(b.in.java, args, append(cleanEnv(), "HOME="+b.dir), b.dir, b.log.File())
	if err != nil {
		return fmt.Errorf("activemq: %w", err)
	}
	b.mu.Lock()
	b.proc = p
	b.mu.Unlock()

	var last error
	for {
		if p.Poll() {
			b.clearProc(p)
			err := fmt.Errorf("activemq: broker %s exited during start-up (%s)", b.name, p.Describe())
			if b.logContainsSince(num, "Address already in use") {
				err = fmt.Errorf("%w: %w", err, errAddrInUse)
			}
			return b.withLog(err)
		}
		last = b.Probe(probeTimeout)
		if last == nil {
			b.mu.Lock()
			b.lastStart = time.Since(began)
			b.mu.Unlock()
			b.note(fmt.Sprintf("ready after %v", time.Since(began).Round(time.Millisecond)))
			return nil
		}
		if time.Now().After(deadline) {
			b.killLocked()
			return b.withLog(fmt.Errorf("activemq: broker %s not ready in time (the last CONNECT to %s: %v)",
				b.name, b.MQTTAddr(), last))
		}
		time.Sleep(readyPoll)
	}
}

// Probe sends one MQTT 3.1.1 CONNECT (clean session, the broker's
// credentials if any) and returns nil if a CONNACK accepted it.
func (b *Broker) Probe(timeout time.Duration) error {
	return mqtt311.Probe(b.MQTTAddr(), b.Connect("mqttkeep-ready-"+b.name, true), timeout)
}

// Connect returns a 3.1.1 CONNECT for clientID, with the [WithUser]
// credentials if any.
func (b *Broker) Connect(clientID string, cleanSession bool) mqtt311.Connect {
	c := mqtt311.Connect{ClientID: clientID, CleanSession: cleanSession}
	if b.cfg.user != "" {
		c.Username, c.Password = b.cfg.user, []byte(b.cfg.pass)
	}
	return c
}

// MQTTAddr returns "127.0.0.1:PORT" of the MQTT connector; it stays the
// same across Stop, Kill and Restart.
func (b *Broker) MQTTAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
}

// Dir returns the broker's directory (conf/, data/, console.log).
func (b *Broker) Dir() string { return b.dir }

// Version returns ActiveMQ's version, e.g. "5.17.2" ("" if unknown).
func (b *Broker) Version() string { return b.in.version }

// PID returns the process id of the broker's JVM, or 0 when it is not
// running.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return 0
	}
	return b.proc.Pid()
}

// Running reports whether the broker's JVM is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	return p != nil && !p.Poll()
}

// StartDuration returns how long the last successful start or restart
// took, from starting the JVM until the broker accepted a CONNECT.
func (b *Broker) StartDuration() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastStart
}

// Stop stops the broker cleanly (SIGTERM: the JVM's shutdown hook stops
// the broker and closes its store) and waits for the JVM to exit; if it
// has not within [WithStopTimeout], it is killed and Stop says so. Stop
// does nothing when the broker is not running.
func (b *Broker) Stop() error {
	b.life.Lock()
	defer b.life.Unlock()
	return b.stopLocked()
}

func (b *Broker) stopLocked() error {
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if p == nil {
		return nil
	}
	b.note("SIGTERM")
	p.Signal(syscall.SIGTERM)
	if p.Wait(b.cfg.stopTimeout) {
		b.note("exited: " + p.Describe())
		b.clearProc(p)
		return nil
	}
	b.killLocked()
	return fmt.Errorf("activemq: broker %s did not stop within %v of SIGTERM and was killed", b.name, b.cfg.stopTimeout)
}

// Kill sends SIGKILL to the JVM and waits for it to exit: no clean
// shutdown, clients see their connections reset. Kill does nothing when
// the broker is not running.
func (b *Broker) Kill() error {
	b.life.Lock()
	defer b.life.Unlock()
	return b.killLocked()
}

func (b *Broker) killLocked() error {
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if p == nil {
		return nil
	}
	b.note("SIGKILL")
	p.KillGroup()
	if !p.Wait(10 * time.Second) {
		return fmt.Errorf("activemq: broker %s (pid %d) still running 10 s after SIGKILL", b.name, p.Pid())
	}
	b.note("exited: " + p.Describe())
	b.clearProc(p)
	return nil
}

// Restart stops the broker cleanly if it is running, starts it again on
// the same directory and port (its KahaDB store, so its durable
// subscriptions and persistent messages, survive) and waits until it is
// ready, retrying while the port is still busy; bounded by
// [WithStartTimeout].
func (b *Broker) Restart() error {
	b.life.Lock()
	defer b.life.Unlock()
	if err := b.stopLocked(); err != nil {
		return err
	}
	deadline := time.Now().Add(b.cfg.startTimeout)
	for {
		err := b.launchAndWait(deadline)
		if err == nil || !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Close stops the broker (as Stop); later Restarts fail with ErrClosed.
// Close is idempotent.
func (b *Broker) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	return b.closeLocked()
}

func (b *Broker) closeLocked() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	err := b.stopLocked()
	b.note("closed")
	_ = b.log.Close()
	return err
}

func (b *Broker) clearProc(p *childproc.Process) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == p {
		b.proc = nil
	}
}
