package rabbitmq

import (
	"os"
	"strings"
)

// cleanEnv returns the test process's environment without anything that
// would change how Erlang or RabbitMQ start (RABBITMQ_*, ERL_*, HOME,
// systemd's NOTIFY_SOCKET), with the system directories on PATH.
func cleanEnv() []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "RABBITMQ_"), strings.HasPrefix(k, "ERL_"),
			k == "HOME", k == "NOTIFY_SOCKET":
			continue
		case k == "PATH":
			path = v
			continue
		}
		env = append(env, kv)
	}
	for _, d := range []string{"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			if path != "" {
				path += ":"
			}
			path += d
		}
	}
	return append(env, "PATH="+path)
}
