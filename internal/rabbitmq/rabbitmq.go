// Package rabbitmq runs RabbitMQ nodes from Debian's rabbitmq-server
// package (3.10, MQTT 3.1 and 3.1.1 through the rabbitmq_mqtt plugin) as
// child processes, for tests that need a real RabbitMQ: one node
// ([Start]), a cluster of nodes on one machine ([StartCluster]), or a node
// or cluster shared by every test of a test binary ([Shared],
// [SharedCluster]).
//
// # What a node is here
//
// Each node gets a directory of its own (configuration, Erlang cookie,
// database, log), a unique node name (NAME@localhost, with the test
// binary's process id in NAME) and free ports on 127.0.0.1 for MQTT, AMQP
// and Erlang distribution, picked below the kernel's ephemeral range so
// that no client connection takes them while a node is down. Every
// listener is bound to 127.0.0.1. Each standalone node and each cluster
// runs its own epmd on a free port (ERL_EPMD_PORT), started and ended by
// this package: the machine's epmd on 4369 is neither used nor started,
// and none is left running.
//
// The node runs as the user running the test, without Debian's wrapper
// (/usr/sbin/rabbitmq-server switches to the user rabbitmq, which could not
// read a test's temporary directory). RABBITMQ_ALLOW_INPUT makes the
// server script exec the Erlang VM, so the process this package starts is
// the node's beam.smp itself: SIGTERM stops it cleanly (the VM's default
// handler runs init:stop, as rabbitmqctl stop does), SIGKILL kills it on
// the spot, and on Linux the kernel kills it if the test binary dies.
//
// A node is ready when its MQTT listener answers a 3.1.1 CONNECT with a
// CONNACK accepting it (package mqtt311 writes the bytes). Every wait is
// bounded (see [WithStartTimeout]); a node that fails to start is killed
// and its error carries the last lines of its log.
//
// # Time
//
// On 2 cores a node's first start takes about 14 s (6 s on the same data
// directory afterwards), three nodes started together about 25 s, and
// joining two of them to the first 5 to 15 s in all; a loaded machine
// doubles or triples these. Tests of the library
// should share one node or cluster per test binary ([Shared],
// [SharedCluster]) and keep apart by client identifiers and topics of
// their own ([UniqueName]; a virtual host of their own, [Node.AddVhost],
// separates topics but not client identifiers, which the MQTT plugin
// tracks across virtual hosts); only tests that stop, kill or restart
// brokers need their own.
//
// # Missing broker
//
// When rabbitmq-server is not installed a test calling Start is skipped,
// unless MQTTKEEP_REQUIRE_RABBITMQ is 1 (as in CI): then it fails.
// .ci/install-rabbitmq installs the package.
package rabbitmq

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
)

// RequireEnv is the environment variable that turns a missing RabbitMQ
// from a skip into a failure when set to "1".
const RequireEnv = "MQTTKEEP_REQUIRE_RABBITMQ"

// LogEnv, set to "1", shows a node's log at the end of every test that
// started it, not only of failed ones.
const LogEnv = "MQTTKEEP_RABBITMQ_LOG"

// MissingMessage is the skip (or failure) message when RabbitMQ is not
// installed.
const MissingMessage = "rabbitmq-server (with its MQTT plugin) not installed: apt-get install rabbitmq-server, or bash .ci/install-rabbitmq"

// ErrNotInstalled is matched by the error of [NewNode] and [NewCluster]
// when rabbitmq-server, its MQTT plugin or epmd is missing.
var ErrNotInstalled = errors.New("rabbitmq: " + MissingMessage)

// libDir is where Debian's rabbitmq-server keeps the server's scripts
// (bin/) and releases (lib/rabbitmq_server-VERSION/).
const libDir = "/usr/lib/rabbitmq"

// install holds the paths of an installed RabbitMQ.
type install struct {
	server  string // the real server script, not Debian's wrapper
	ctl     string // rabbitmqctl, likewise
	epmd    string
	version string // e.g. "3.10.8"
}

// findInstall returns the installed RabbitMQ, or an error wrapping
// ErrNotInstalled that says what is missing.
func findInstall() (install, error) {
	rels, _ := filepath.Glob(filepath.Join(libDir, "lib", "rabbitmq_server-*"))
	sort.Strings(rels)
	if len(rels) == 0 {
		return install{}, ErrNotInstalled
	}
	rel := rels[len(rels)-1]
	in := install{
		server:  filepath.Join(rel, "sbin", "rabbitmq-server"),
		ctl:     filepath.Join(rel, "sbin", "rabbitmqctl"),
		version: strings.TrimPrefix(filepath.Base(rel), "rabbitmq_server-"),
	}
	for _, p := range []string{in.server, in.ctl} {
		if !executable(p) {
			return install{}, ErrNotInstalled
		}
	}
	if m, _ := filepath.Glob(filepath.Join(rel, "plugins", "rabbitmq_mqtt-*")); len(m) == 0 {
		return install{}, ErrNotInstalled
	}
	in.epmd = epmdBinary()
	if in.epmd == "" {
		return install{}, ErrNotInstalled
	}
	return in, nil
}

// epmdBinary returns the path of Erlang's epmd, or "".
func epmdBinary() string {
	if p, err := exec.LookPath("epmd"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/erlang/erts-*/bin/epmd"); len(m) > 0 {
		sort.Strings(m)
		return m[len(m)-1]
	}
	return ""
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Installed reports whether RabbitMQ (server, rabbitmqctl, MQTT plugin
// and epmd) is installed, and its version ("3.10.8").
func Installed() (version string, ok bool) {
	in, err := findInstall()
	if err != nil {
		return "", false
	}
	return in.version, true
}

// missing skips the test, or fails it when MQTTKEEP_REQUIRE_RABBITMQ=1.
func missing(tb testing.TB) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatal(MissingMessage)
		return
	}
	tb.Skip(MissingMessage)
}

// requireInstall returns the install, or skips or fails tb; ok is false
// when tb.Skip returned (only with a testing.TB that does not stop the
// goroutine).
func requireInstall(tb testing.TB) (install, bool) {
	tb.Helper()
	in, err := findInstall()
	if err != nil {
		missing(tb)
		return install{}, false
	}
	return in, true
}

// cleanEnv returns the test process's environment without anything that
// would change how Erlang or RabbitMQ start.
func cleanEnv() []string { return childproc.CleanEnv("RABBITMQ_", "ERL_") }
