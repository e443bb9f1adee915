package childproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports are picked at random below the kernel's ephemeral range, so that
// no outgoing connection (of a test client, say) takes a node's port
// while the node is down between a kill and a restart, which would make
// the restart fail. Each is checked free on 127.0.0.1 when picked; a node
// that still finds one taken fails to start and is started again on
// fresh ports.
const (
	portLow  = 20000 // lowest port picked
	portHigh = 32000 // one past the highest, when the ephemeral range starts above it
	// portTries bounds the random picks for one port.
	portTries = 200
)

// reserved are ports a harness never picks: the well-known ones of the
// brokers and epmd, and the range rabbitmqctl's own Erlang node listens
// in (35672-35682 by default).
func reserved(p int) bool {
	switch p {
	case 1883, 4369, 5671, 5672, 8883, 15672, 15675, 25672, 61613, 61614, 61616:
		return true
	}
	return p >= 35672 && p <= 35682
}

// ephemeralLow returns the lowest port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}

// FreePorts returns n distinct ports, each free on 127.0.0.1 a moment
// ago, none in used nor a well-known port of the brokers.
func FreePorts(n int, used map[int]bool) ([]int, error) {
	high := min(portHigh, ephemeralLow())
	out := make([]int, 0, n)
	taken := func(p int) bool {
		if used[p] || reserved(p) {
			return true
		}
		for _, q := range out {
			if q == p {
				return true
			}
		}
		return false
	}
	for len(out) < n {
		port := 0
		for range portTries {
			if high <= portLow {
				break
			}
			p := portLow + rand.IntN(high-portLow)
			if !taken(p) && isFree(p) {
				port = p
				break
			}
		}
		// A system whose ephemeral range starts low, or no free port
		// found: let the kernel choose.
		for i := 0; port == 0 && i < portTries; i++ {
			p, err := kernelPort()
			if err != nil {
				return nil, err
			}
			if !taken(p) {
				port = p
			}
		}
		if port == 0 {
			return nil, fmt.Errorf("childproc: no free port on 127.0.0.1 after %d tries", 2*portTries)
		}
		out = append(out, port)
	}
	return out, nil
}

func isFree(p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func kernelPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
