package rabbitmq

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
)

// epmd is an Erlang port mapper daemon of this package's own, in the
// foreground on 127.0.0.1 and a free port: the nodes it serves find it
// through ERL_EPMD_PORT. When RabbitMQ starts, it runs "epmd -daemon"
// itself (rabbit_nodes_common:ensure_epmd), which finds the port taken
// and exits, so no daemon outlives the tests.
type epmd struct {
	port int
	proc *childproc.Process
	out  *os.File
}

// epmdStartTimeout bounds the start of one epmd.
const epmdStartTimeout = 10 * time.Second

// startEpmd starts an epmd writing to dir/epmd.log and returns once its
// port accepts connections, retrying on fresh ports while one is busy.
func startEpmd(bin, dir string) (*epmd, error) {
	out, err := os.OpenFile(filepath.Join(dir, "epmd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(epmdStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		ports, err := childproc.FreePorts(1, nil)
		if err != nil {
			_ = out.Close()
			return nil, err
		}
		port := ports[0]
		p, err := childproc.Start(bin, []string{bin, "-port", strconv.Itoa(port), "-address", "127.0.0.1"},
			cleanEnv(), dir, out)
		if err != nil {
			_ = out.Close()
			return nil, err
		}
		for {
			if p.Poll() {
				// Most likely the port was taken after it was picked.
				last = fmt.Errorf("epmd on port %d exited: %s", port, p.Describe())
				break
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				_ = c.Close()
				return &epmd{port: port, proc: p, out: out}, nil
			}
			last = err
			if time.Now().After(deadline) {
				p.KillGroup()
				p.Wait(5 * time.Second)
				break
			}
			time.Sleep(childproc.PollInterval)
		}
	}
	_ = out.Close()
	return nil, fmt.Errorf("rabbitmq: epmd did not start in %v: %w", epmdStartTimeout, last)
}

// stop ends the epmd and waits for it (SIGKILL after 5 s).
func (e *epmd) stop() {
	e.proc.Signal(syscall.SIGTERM)
	if !e.proc.Wait(5 * time.Second) {
		e.proc.KillGroup()
		e.proc.Wait(5 * time.Second)
	}
	_ = e.out.Close()
}
