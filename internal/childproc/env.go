package childproc

import (
	"os"
	"strings"
)

// CleanEnv returns the test process's environment without the variables
// whose names start with one of drop, nor HOME and systemd's
// NOTIFY_SOCKET, and with the system directories on PATH.
func CleanEnv(drop ...string) []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			path = v
			continue
		}
		if k == "HOME" || k == "NOTIFY_SOCKET" || hasAnyPrefix(k, drop) {
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

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
