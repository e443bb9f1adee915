// Package activemq runs an Apache ActiveMQ Classic broker from Debian's
// activemq package (5.17, MQTT 3.1 and 3.1.1 through its mqtt transport
// connector) as a child process, for tests that need a real ActiveMQ:
// one broker per test ([Start]) or one shared by every test of a test
// binary ([Shared]).
//
// Each broker gets a directory of its own (activemq.xml, log4j.properties,
// the KahaDB store in data/, the console log) and a free port on
// 127.0.0.1 for its only transport connector, mqtt://127.0.0.1:PORT. The
// process started is the JVM itself (java -jar activemq.jar start
// xbean:file:...), without Debian's init script: SIGTERM stops the broker
// cleanly (its shutdown hook), SIGKILL kills it on the spot, and on Linux
// the kernel kills it if the test binary dies. A broker is ready when its
// MQTT connector answers a 3.1.1 CONNECT with a CONNACK accepting it;
// every wait is bounded and a broker that fails to start is killed, its
// error carrying the last lines of its log. On 2 cores the JVM and broker
// start in about 2 to 3 s.
//
// Debian's activemq lacks a dependency of its MQTT connector: the codec
// classes (org.fusesource.mqtt.codec) are in libmqtt-client-java, which
// this package puts on the broker's class path (through its lib/
// directory). .ci/install-activemq installs both packages. When either
// is missing a test calling Start is skipped, unless
// MQTTKEEP_REQUIRE_ACTIVEMQ is 1 (as in CI): then it fails.
package activemq

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mqttkeep/mqttkeep/internal/childproc"
)

// RequireEnv is the environment variable that turns a missing ActiveMQ
// from a skip into a failure when set to "1".
const RequireEnv = "MQTTKEEP_REQUIRE_ACTIVEMQ"

// LogEnv, set to "1", shows a broker's log at the end of every test that
// started it, not only of failed ones.
const LogEnv = "MQTTKEEP_ACTIVEMQ_LOG"

// MissingMessage is the skip (or failure) message when ActiveMQ is not
// installed.
const MissingMessage = "ActiveMQ with its MQTT codec not installed: apt-get install activemq libmqtt-client-java, or bash .ci/install-activemq"

// ErrNotInstalled is matched by the error of [NewBroker] when Java,
// ActiveMQ or the MQTT codec library is missing.
var ErrNotInstalled = errors.New("activemq: " + MissingMessage)

// Where Debian's packages put ActiveMQ (activemq) and the MQTT codec
// (libmqtt-client-java).
const (
	homeDir  = "/usr/share/activemq"
	codecJar = "/usr/share/java/mqtt-client.jar"
	runJar   = homeDir + "/bin/activemq.jar"
	mqttJar  = homeDir + "/lib/activemq-mqtt.jar"
	javaDir  = "/usr/share/java"
)

// install holds the paths of an installed ActiveMQ.
type install struct {
	java    string
	version string // e.g. "5.17.2"
}

// findInstall returns the installed ActiveMQ, or ErrNotInstalled.
func findInstall() (install, error) {
	java := javaBinary()
	if java == "" {
		return install{}, ErrNotInstalled
	}
	for _, p := range []string{runJar, mqttJar, codecJar} {
		if _, err := os.Stat(p); err != nil {
			return install{}, ErrNotInstalled
		}
	}
	in := install{java: java}
	// Debian names the versioned jar activemq-broker-VERSION.jar.
	if m, _ := filepath.Glob(filepath.Join(javaDir, "activemq-broker-*.jar")); len(m) > 0 {
		v := filepath.Base(m[len(m)-1])
		in.version = v[len("activemq-broker-") : len(v)-len(".jar")]
	}
	return in, nil
}

// javaBinary returns the path of java, or "".
func javaBinary() string {
	if p, err := exec.LookPath("java"); err == nil {
		return p
	}
	const p = "/usr/lib/jvm/default-java/bin/java"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// Installed reports whether ActiveMQ (with Java and the MQTT codec) is
// installed, and its version ("5.17.2", or "" if unknown).
func Installed() (version string, ok bool) {
	in, err := findInstall()
	if err != nil {
		return "", false
	}
	return in.version, true
}

// missing skips the test, or fails it when MQTTKEEP_REQUIRE_ACTIVEMQ=1.
func missing(tb testing.TB) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatal(MissingMessage)
		return
	}
	tb.Skip(MissingMessage)
}

// requireInstall reports whether ActiveMQ is installed, skipping or
// failing tb when not; false is returned only with a testing.TB whose
// Skip returns.
func requireInstall(tb testing.TB) bool {
	tb.Helper()
	if _, err := findInstall(); err != nil {
		missing(tb)
		return false
	}
	return true
}

// cleanEnv returns the test process's environment without anything that
// would change how the JVM or ActiveMQ start.
func cleanEnv() []string {
	return childproc.CleanEnv("ACTIVEMQ_", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH")
}
