package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// brokerProc is a broker in a process of its own on 127.0.0.1: Mosquitto
// (the mosquitto binary on PATH or in /usr/sbin) or the mochi broker of
// "mqttkeep broker" (cmd/mqttkeep, built once from the repository). It can
// be killed with SIGKILL and started again on the same port. Every line
// the broker logs is timestamped when this process reads it from the
// pipe; CONNECT lines are kept (see connects).
type brokerProc struct {
	kind string // "mosquitto" or "mqttkeep-broker"
	port int
	dir  string
	args []string
	bin  string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process was waited for
	connects []time.Time   // receipt time of every "client connected" line
	readers  sync.WaitGroup
}

// brokerKinds are the external brokers the benchmarks can start.
var brokerKinds = []string{"mosquitto", "mqttkeep-broker"}

var (
	mqttkeepBinOnce sync.Once
	mqttkeepBin     string
	mqttkeepBinErr  error
)

// repoRoot is the repository holding cmd/mqttkeep (set by -repo).
var repoRoot = ".."

// buildMqttkeepBroker builds cmd/mqttkeep once per process.
func buildMqttkeepBroker() (string, error) {
	mqttkeepBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mqttkeep-bench-bin-")
		if err != nil {
			mqttkeepBinErr = err
			return
		}
		mqttkeepBin = filepath.Join(dir, "mqttkeep")
		cmd := exec.Command("go", "build", "-o", mqttkeepBin, "./cmd/mqttkeep")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			mqttkeepBinErr = fmt.Errorf("building cmd/mqttkeep in %s: %w: %s", repoRoot, err, out)
		}
	})
	return mqttkeepBin, mqttkeepBinErr
}

// mosquittoPath finds the mosquitto binary.
func mosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", errors.New("mosquitto not found on PATH or in /usr/sbin (bash .ci/install-mosquitto installs it)")
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startBrokerProc starts a broker of kind on a free port and waits until
// it accepts connections. verbose asks Mosquitto for log_type all (the
// mqttkeep broker always logs connects).
func startBrokerProc(ctx context.Context, kind string, verbose bool) (*brokerProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &brokerProc{kind: kind, port: port}
	switch kind {
	case "mosquitto":
		b.bin, err = mosquittoPath()
		if err != nil {
			return nil, err
		}
		b.dir, err = os.MkdirTemp("", "mqttkeep-bench-mosquitto-")
		if err != nil {
			return nil, err
		}
		logType := "error\nlog_type warning\nlog_type notice"
		if verbose {
			logType = "all"
		}
		conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"+
			"max_queued_messages 0\nlog_dest stderr\nlog_type %s\nlog_timestamp false\n", port, logType)
		path := filepath.Join(b.dir, "mosquitto.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			os.RemoveAll(b.dir)
			return nil, err
		}
		b.args = []string{"-c", path}
	case "mqttkeep-broker":
		b.bin, err = buildMqttkeepBroker()
		if err != nil {
			return nil, err
		}
		b.args = []string{"broker", "-l", fmt.Sprintf("127.0.0.1:%d", port)}
	default:
		return nil, fmt.Errorf("unknown broker kind %q (want %s)", kind, strings.Join(brokerKinds, " or "))
	}
	if err := b.start(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Addr returns "127.0.0.1:PORT".
func (b *brokerProc) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// PID returns the broker's process ID (0 when not running).
func (b *brokerProc) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

func (b *brokerProc) start(ctx context.Context) error {
	cmd := exec.Command(b.bin, b.args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	errOut, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
	b.readers.Add(2)
	go b.read(out)
	go b.read(errOut)
	go func() {
		b.readers.Wait()
		_ = cmd.Wait()
		close(done)
	}()
	return b.awaitListening(ctx, done)
}

// read timestamps every line of r; client connects are kept.
func (b *brokerProc) read(r io.Reader) {
	defer b.readers.Done()
	s := bufio.NewScanner(r)
	for s.Scan() {
		at := time.Now()
		line := s.Text()
		// Mosquitto: "New client connected from 127.0.0.1:40000 as ID (p5, c1, k30)."
		// mqttkeep broker: `mqttkeep broker: client "ID" connected from 127.0.0.1:40000 (...)`.
		if strings.Contains(line, "New client connected from") || (strings.Contains(line, ": client \"") && strings.Contains(line, "\" connected from ")) {
			b.mu.Lock()
			b.connects = append(b.connects, at)
			b.mu.Unlock()
		}
	}
}

// awaitListening polls the port until it accepts a TCP connection.
func (b *brokerProc) awaitListening(ctx context.Context, done <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited before listening on %s", b.kind, b.Addr())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after 10 s: %w", b.kind, b.Addr(), err)
		}
	}
}

// Kill sends SIGKILL to the broker process (ours, by its PID) and waits
// for it to exit.
func (b *brokerProc) Kill() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	b.mu.Lock()
	b.cmd = nil
	b.mu.Unlock()
}

// Restart starts the broker again on the same port (after Kill) and
// waits until it listens.
func (b *brokerProc) Restart(ctx context.Context) error { return b.start(ctx) }

// Connects returns the receipt times of the broker's "client connected"
// log lines.
func (b *brokerProc) Connects() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.connects...)
}

// Close kills the broker and removes its files.
func (b *brokerProc) Close() {
	b.Kill()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
