// Package mosquitto runs an Eclipse Mosquitto broker as a child process
// for interoperability tests.
//
// [Start] writes a configuration file into the test's temporary directory
// (a listener on 127.0.0.1 and a free port, log to stderr), starts
// `mosquitto -c CONFIG`, waits until the port accepts connections and
// registers the broker's shutdown with tb.Cleanup. Everything Mosquitto
// logs is kept, line by line with the time it arrived, for [Broker.Count]
// and [Broker.WaitLog], and shown when the test fails.
//
// When the mosquitto binary is missing the test is skipped, unless the
// environment variable MQTTKEEP_REQUIRE_MOSQUITTO is 1 (as in CI): then it
// fails. .ci/install-mosquitto installs it (Debian packages mosquitto and
// mosquitto-clients).
//
// No goroutine outlives [Broker.Stop], [Broker.Kill] or the cleanup: the
// only ones are os/exec's stderr copier and the waiter of each process,
// and both end when the process has exited.
package mosquitto

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
)

// RequireEnv is the environment variable that turns a missing mosquitto
// binary from a skip into a failure when set to "1".
const RequireEnv = "MQTTKEEP_REQUIRE_MOSQUITTO"

// MissingMessage is the skip (or failure) message when mosquitto is not
// installed.
const MissingMessage = "mosquitto not installed: apt-get install mosquitto mosquitto-clients"

const (
	// startTimeout bounds how long Start and Restart wait for the port to
	// accept connections, retrying the bind while the port is busy.
	startTimeout = 10 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL.
	stopTimeout = 10 * time.Second
	// maxShownLines caps the log shown when a test fails.
	maxShownLines = 3000
)

// Option configures a broker started by [Start].
type Option func(*config)

type config struct {
	logTypes     []string
	maxKeepAlive int // seconds; 0: not set (Mosquitto's default, 65535)
	persistence  bool
	autosave     int // seconds between autosaves when persistence is on
	user, pass   string
	extra        []string
}

// WithMaxKeepAlive sets max_keepalive: Mosquitto then answers an MQTT v5
// CONNECT asking for a longer keep alive (or none) with a Server Keep
// Alive of seconds in its CONNACK. Mosquitto 2.0 refuses to start with a
// value below 10 ("Error: Invalid max_keepalive value").
func WithMaxKeepAlive(seconds int) Option {
	return func(c *config) { c.maxKeepAlive = seconds }
}

// WithPersistence turns persistence on, with persistence_location in the
// test's temporary directory, kept across [Broker.Restart]. Mosquitto
// writes its database on a clean shutdown and every autosave_interval
// (set here to 1 s, so that a SIGKILL loses at most about the last second
// of session state; Mosquitto's default is 30 minutes). Mosquitto 2.0
// writes only the sessions of clients that connected with Clean Start 0:
// a session begun with Clean Start 1 lives on in memory after its
// connection ends (MQTT v5 Session Expiry) but is lost on a restart.
func WithPersistence() Option {
	return func(c *config) {
		c.persistence = true
		if c.autosave == 0 {
			c.autosave = 1
		}
	}
}

// WithAutosaveInterval sets autosave_interval in seconds for
// [WithPersistence] (default 1 s here).
func WithAutosaveInterval(seconds int) Option {
	return func(c *config) { c.autosave = seconds }
}

// WithPasswordFile makes the broker require a user name and password:
// it generates a password file with `mosquitto_passwd -b -c` holding one
// user, and sets allow_anonymous false.
func WithPasswordFile(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// WithLogTypes limits what Mosquitto logs (and this helper keeps in
// memory) to the given log_type values, e.g. "error", "warning",
// "notice"; the default is "all", which logs every packet.
func WithLogTypes(types ...string) Option {
	return func(c *config) { c.logTypes = append([]string(nil), types...) }
}

// WithConfigLines appends raw lines to the configuration file.
func WithConfigLines(lines ...string) Option {
	return func(c *config) { c.extra = append(c.extra, lines...) }
}

// Line is one line Mosquitto logged, with the time this process read it.
type Line struct {
	Time time.Time
	Text string
}

// Broker is a Mosquitto child process. Its methods are safe for concurrent
// use.
type Broker struct {
	tb      testing.TB
	bin     string
	dir     string
	cfgPath string
	addr    string // 127.0.0.1:PORT; kept across Restart

	life sync.Mutex // serialises Stop, Kill, Restart and the cleanup

	mu     sync.Mutex // guards the fields below
	lines  []Line
	part   []byte // an incomplete last line
	proc   *process
	starts int
}

// process is one run of the mosquitto binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its stderr was read
	err  error         // cmd.Wait's result, set before done is closed
}

// Binary returns the path of the mosquitto binary, or "" when it is not
// installed. Debian installs it in /usr/sbin, which is not always on PATH.
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// passwdBinary returns the path of mosquitto_passwd, or "".
func passwdBinary(mosquittoBin string) string {
	if p, err := exec.LookPath("mosquitto_passwd"); err == nil {
		return p
	}
	for _, dir := range []string{filepath.Dir(mosquittoBin), "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, "mosquitto_passwd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts Mosquitto on 127.0.0.1 and a free port and returns once the
// port accepts connections (within 10 s). The broker is stopped when the
// test ends, and its log is shown if the test failed. A missing binary
// skips the test (fails it when MQTTKEEP_REQUIRE_MOSQUITTO=1).
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		missing(tb)
		return nil // only reached with a testing.TB whose Skip returns
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	b := &Broker{tb: tb, bin: bin, dir: tb.TempDir()}
	b.cfgPath = filepath.Join(b.dir, "mosquitto.conf")
	tb.Cleanup(b.cleanup)

	var passwordFile string
	if cfg.user != "" {
		pw := passwdBinary(bin)
		if pw == "" {
			tb.Fatal("mosquitto_passwd not installed: apt-get install mosquitto")
		}
		passwordFile = filepath.Join(b.dir, "passwords")
		out, err := exec.Command(pw, "-b", "-c", passwordFile, cfg.user, cfg.pass).CombinedOutput()
		if err != nil {
			tb.Fatalf("mosquitto_passwd -b -c: %v: %s", err, out)
		}
	}
	if cfg.persistence {
		if err := os.Mkdir(filepath.Join(b.dir, "data"), 0o700); err != nil {
			tb.Fatal(err)
		}
	}

	deadline := time.Now().Add(startTimeout)
	for {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("mosquitto: %v", err)
		}
		b.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := os.WriteFile(b.cfgPath, []byte(b.config(&cfg, port, passwordFile)), 0o600); err != nil {
			tb.Fatal(err)
		}
		// Another process may take the free port before Mosquitto binds
		// it: then try another port, within the same bound.
		err = b.launch(deadline)
		if err == nil {
			return b
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			tb.Fatalf("mosquitto: start: %v", err)
		}
	}
}

// missing skips the test, or fails it when MQTTKEEP_REQUIRE_MOSQUITTO=1.
func missing(tb testing.TB) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatal(MissingMessage)
		return
	}
	tb.Skip(MissingMessage)
}

// config returns the configuration file's text.
func (b *Broker) config(c *config, port int, passwordFile string) string {
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	w("# written by internal/mosquitto for %s", b.tb.Name())
	w("listener %d 127.0.0.1", port)
	if passwordFile != "" {
		w("allow_anonymous false")
		w("password_file %s", passwordFile)
	} else {
		w("allow_anonymous true")
	}
	if os.Geteuid() == 0 {
		// Mosquitto 2 run as root drops to the user "mosquitto", who could
		// not read the temporary directory; "root" keeps the privileges.
		w("user root")
	}
	w("log_dest stderr")
	if len(c.logTypes) == 0 {
		w("log_type all")
	}
	for _, t := range c.logTypes {
		w("log_type %s", t)
	}
	w("connection_messages true")
	w("log_timestamp true")
	w("log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S")
	if c.maxKeepAlive > 0 {
		w("max_keepalive %d", c.maxKeepAlive)
	}
	if c.persistence {
		w("persistence true")
		w("persistence_location %s/", filepath.Join(b.dir, "data"))
		w("autosave_interval %d", c.autosave)
	} else {
		w("persistence false")
	}
	for _, l := range c.extra {
		w("%s", l)
	}
	return s.String()
}

// freePort returns a port on 127.0.0.1 that was free a moment ago, below
// the kernel's ephemeral range: a listener on port 0 elsewhere in the
// test binary (the embedded brokers, the fault proxies) cannot take it
// before Mosquitto binds it, and then pass the readiness check in
// Mosquitto's place.
func freePort() (int, error) {
	ports, err := childproc.FreePorts(1, nil)
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return ports[0], nil
}

var errAddrInUse = errors.New("address already in use")

// launch starts one mosquitto process and waits until b.addr accepts
// connections. It returns an error wrapping errAddrInUse when the process
// exited because the port was busy. The caller holds b.life or is Start.
func (b *Broker) launch(deadline time.Time) error {
	cmd := exec.Command(b.bin, "-c", b.cfgPath)
	cmd.Dir = b.dir
	cmd.Stdout = b.logWriter()
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = sysProcAttr()
	b.mu.Lock()
	b.starts++
	n := b.starts
	b.mu.Unlock()
	b.note(fmt.Sprintf("--- internal/mosquitto: start #%d on %s", n, b.addr))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s -c %s: %w", b.bin, b.cfgPath, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.mu.Lock()
	b.proc = p
	b.mu.Unlock()

	for {
		select {
		case <-p.done:
			b.clearProc(p)
			if b.logContainsSince(n, "Address already in use") {
				return fmt.Errorf("%s: %w (%v)", b.addr, errAddrInUse, p.err)
			}
			return fmt.Errorf("mosquitto exited during start-up: %v; log:\n%s", p.err, b.Log())
		default:
		}
		c, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			b.signalAndWait(p, syscall.SIGKILL)
			return fmt.Errorf("%s did not accept connections in time: %v", b.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr returns "127.0.0.1:PORT". The port stays the same across Restart.
func (b *Broker) Addr() string { return b.addr }

// URL returns "mqtt://127.0.0.1:PORT".
func (b *Broker) URL() string { return "mqtt://" + b.addr }

// Dir returns the broker's temporary directory (configuration, password
// file, persistence database in data/).
func (b *Broker) Dir() string { return b.dir }

// Running reports whether the mosquitto process is running.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc != nil
}

// PID returns the process id of the running mosquitto, or 0.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == nil {
		return 0
	}
	return b.proc.cmd.Process.Pid
}

// Stop sends SIGTERM (Mosquitto disconnects its clients and saves its
// persistence database) and waits for the process to exit; after 10 s it
// sends SIGKILL. Stop does nothing when the broker is not running.
func (b *Broker) Stop() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stopLocked(syscall.SIGTERM)
}

// Kill sends SIGKILL (no DISCONNECT, no save: clients see their sockets
// closed by the kernel) and waits for the process to exit. Kill does
// nothing when the broker is not running.
func (b *Broker) Kill() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stopLocked(syscall.SIGKILL)
}

// Restart stops the broker with SIGTERM if it is running, then starts it
// again with the same configuration on the same port, retrying while the
// port is still busy, and waits until it accepts connections (10 s in
// all). With persistence, the new process loads the database the last one
// saved.
func (b *Broker) Restart() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.stopLocked(syscall.SIGTERM)
	deadline := time.Now().Add(startTimeout)
	for {
		err := b.launch(deadline)
		if err == nil || !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *Broker) stopLocked(sig syscall.Signal) {
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if p == nil {
		return
	}
	b.signalAndWait(p, sig)
}

// signalAndWait signals p, waits for it to exit (SIGKILL after
// stopTimeout) and forgets it.
func (b *Broker) signalAndWait(p *process, sig syscall.Signal) {
	b.note(fmt.Sprintf("--- internal/mosquitto: %v", sig))
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		b.note("--- internal/mosquitto: no exit after SIGTERM, sending SIGKILL")
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	b.note(fmt.Sprintf("--- internal/mosquitto: exited: %v", p.err))
	b.clearProc(p)
}

func (b *Broker) clearProc(p *process) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc == p {
		b.proc = nil
	}
}

// cleanup stops the broker and shows its log if the test failed.
func (b *Broker) cleanup() {
	b.life.Lock()
	b.stopLocked(syscall.SIGTERM)
	b.life.Unlock()
	if b.tb.Failed() || os.Getenv("MQTTKEEP_MOSQUITTO_LOG") == "1" {
		b.mu.Lock()
		lines := b.lines
		b.mu.Unlock()
		skipped := 0
		if len(lines) > maxShownLines {
			skipped = len(lines) - maxShownLines
			lines = lines[skipped:]
		}
		var s strings.Builder
		fmt.Fprintf(&s, "mosquitto log (%s, times as read by the test", b.cfgPath)
		if skipped > 0 {
			fmt.Fprintf(&s, ", first %d lines left out", skipped)
		}
		s.WriteString("):\n")
		for _, l := range lines {
			fmt.Fprintf(&s, "%s %s\n", l.Time.Format("15:04:05.000"), l.Text)
		}
		b.tb.Log(s.String())
	}
}

// logWriter returns the io.Writer that receives Mosquitto's output.
func (b *Broker) logWriter() *lineWriter { return &lineWriter{b: b} }

type lineWriter struct{ b *Broker }

// Write splits p into lines and records each with the time it arrived.
func (w *lineWriter) Write(p []byte) (int, error) {
	now := time.Now()
	b := w.b
	b.mu.Lock()
	defer b.mu.Unlock()
	data := append(b.part, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, Line{Time: now, Text: string(bytes.TrimRight(data[:i], "\r"))})
		data = data[i+1:]
	}
	b.part = append([]byte(nil), data...)
	return len(p), nil
}

// note adds a line of our own to the log.
func (b *Broker) note(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, Line{Time: time.Now(), Text: text})
}

// logContainsSince reports whether a line logged since start #n contains
// substr.
func (b *Broker) logContainsSince(n int, substr string) bool {
	marker := fmt.Sprintf("--- internal/mosquitto: start #%d ", n)
	b.mu.Lock()
	defer b.mu.Unlock()
	found := false
	for _, l := range b.lines {
		if strings.HasPrefix(l.Text, marker) {
			found = true
		}
		if found && strings.Contains(l.Text, substr) {
			return true
		}
	}
	return false
}

// Lines returns a copy of every line logged so far (Mosquitto's, and the
// helper's own lines starting with "--- internal/mosquitto:").
func (b *Broker) Lines() []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Line(nil), b.lines...)
}

// Matching returns the lines that contain substr.
func (b *Broker) Matching(substr string) []Line {
	var out []Line
	for _, l := range b.Lines() {
		if strings.Contains(l.Text, substr) {
			out = append(out, l)
		}
	}
	return out
}

// Count returns how many lines contain substr.
func (b *Broker) Count(substr string) int { return len(b.Matching(substr)) }

// Log returns the whole log as text.
func (b *Broker) Log() string {
	var s strings.Builder
	for _, l := range b.Lines() {
		s.WriteString(l.Text)
		s.WriteByte('\n')
	}
	return s.String()
}

// WaitLog waits until at least n lines contain substr, or timeout passes;
// it returns the matching lines and whether there were n.
func (b *Broker) WaitLog(substr string, n int, timeout time.Duration) ([]Line, bool) {
	deadline := time.Now().Add(timeout)
	for {
		m := b.Matching(substr)
		if len(m) >= n {
			return m, true
		}
		if time.Now().After(deadline) {
			return m, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
