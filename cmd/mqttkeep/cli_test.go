package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-help"}, {"-h"}, {"help"},
		{"help", "demo"}, {"help", "sub"}, {"help", "pub"}, {"help", "broker"}, {"help", "ping"}, {"help", "check"},
		{"demo", "--help"}, {"sub", "--help"}, {"pub", "--help"}, {"broker", "--help"}, {"ping", "--help"}, {"check", "--help"},
		{"demo", "-h"}, // -h is help where it is not the host
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runSync(t, nil, args...)
			assert.Equal(t, exitOK, code)
			assert.Empty(t, stderr)
			assert.Contains(t, stdout, "sage")
			assert.Contains(t, stdout, "Examples:")
			assert.Contains(t, stdout, "mqttkeep ")
		})
	}
}

// Each command's help mentions every flag the command accepts: the list
// comes from the command's own flag set, so a flag added without help
// fails here.
func TestHelpListsEveryFlag(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range commandFlags(t, c.name) {
				name := "-" + n
				if len(n) > 1 {
					name = "--" + n
				}
				assert.Regexp(t, `(^|[\s,(|\[])`+regexpQuote(name)+`([\s,=)|\]]|$)`, c.help, "help of %s lacks %s", c.name, name)
			}
		})
	}
}

// commandFlags lists the flags a command defines, by running its parser
// with --help and reading the flag set back.
func commandFlags(t *testing.T, cmd string) []string {
	t.Helper()
	fs := newFlagSet(cmd)
	switch cmd {
	case "sub":
		var cf connFlags
		cf.register(fs, cmd)
		var f subFlags
		f.register(fs)
	case "pub":
		var cf connFlags
		cf.register(fs, cmd)
		var f pubFlags
		f.register(fs)
	case "ping", "check", "demo", "broker":
		// Their flags are registered inside the command: the expected
		// lists are written out.
		return map[string][]string{
			"ping":   {"c", "i", "W", "w", "q", "id", "disable-clean-session", "L", "h", "p", "u", "P", "k"},
			"check":  {"json", "pings", "timeout", "L", "h", "p", "i", "u", "P", "k", "cafile", "insecure"},
			"demo":   {"duration", "keepalive", "k", "interval", "json", "svg", "help"},
			"broker": {"l", "listen", "data", "help"},
		}[cmd]
	default:
		t.Fatalf("no flag list for %s", cmd)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	require.NotEmpty(t, names)
	return names
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestBadCommandLine(t *testing.T) {
	t.Parallel()
	const url = "mqtt://127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: mqttkeep COMMAND"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"--bogus"}, `unknown flag "--bogus"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"sub", "-Z", "-t", "a"}, "flag provided but not defined: -Z"},
		{[]string{"sub", "-L", "gopher://x/a"}, `unsupported scheme "gopher"`},
		{[]string{"sub", "-L", "localhost:1883", "-t", "a"}, "want a URL like mqtt://host:1883/topic"},
		{[]string{"sub", "-L", "mqtt://:1883/a"}, "no host"},
		{[]string{"sub", "-L", "mqtt://h:99999/a"}, `port "99999"`},
		{[]string{"sub", "-L", url}, "missing -t FILTER"},
		{[]string{"sub", "-L", url, "-t", "a/#/b"}, "# must be the last level"},
		{[]string{"sub", "-L", url + "/a/#/b"}, "# must be the last level"},
		{[]string{"sub", "-L", url, "-t", "a", "-q", "3"}, "QoS must be 0, 1 or 2"},
		{[]string{"sub", "-L", url, "-t", "a", "-h", "x"}, "either with -L URL or with -h HOST -p PORT"},
		{[]string{"sub", "-t", "a", "-p", "70000"}, "want a port from 1 to 65535"},
		{[]string{"sub", "-t", "a", "-k", "1.5s"}, "whole seconds"},
		{[]string{"sub", "-t", "a", "-C", "0"}, "want a number from 1"},
		{[]string{"sub", "-t", "a", "-F", "%Q"}, "invalid format specifier %Q"},
		{[]string{"sub", "-t", "a", "-F", `\q`}, `invalid escape \q`},
		{[]string{"sub", "-t", "a", "-F", "x%"}, "incomplete % sequence"},
		{[]string{"sub", "-t", "a", "-R", "--retained-only"}, "make no sense"},
		{[]string{"sub", "-t", "a", "--random-filter", "0"}, "--random-filter 0"},
		{[]string{"sub", "-t", "a", "-T", "x/#/y"}, `-T "x/#/y"`},
		{[]string{"sub", "-t", "a", "-V", "mqttv31"}, "MQTT 3.1 is not supported"},
		{[]string{"sub", "-t", "a", "-i", "x", "-I", "y"}, "-i and -I cannot be used together"},
		{[]string{"sub", "-t", "a", "-c"}, "needs a client ID given with -i"},
		{[]string{"sub", "-t", "a", "-x", "-1", "-I", "p"}, "needs a client ID given with -i"},
		{[]string{"sub", "-t", "a", "-x", "soon"}, `-x "soon"`},
		{[]string{"sub", "-t", "a", "--will-payload", "x"}, "need --will-topic"},
		{[]string{"sub", "-t", "a", "--will-topic", "w/+"}, "--will-topic"},
		{[]string{"sub", "-t", "a", "--insecure"}, "TLS flags need TLS"},
		{[]string{"sub", "-t", "a", "--cafile", "/nonexistent/ca.pem"}, "--cafile: open /nonexistent/ca.pem"},
		{[]string{"sub", "-t", "a", "--cafile", "/dev/null", "--cert", "x"}, "--cert and --key go together"},
		{[]string{"sub", "-t", "a", "-L", "mqtts://h/a", "--tls-version", "tlsv9"}, `--tls-version "tlsv9"`},
		{[]string{"sub", "-t", "a", "--ciphers", "ALL"}, "not supported: Go's TLS"},
		{[]string{"sub", "-t", "a", "--psk", "00"}, "TLS-PSK"},
		{[]string{"sub", "-t", "a", "--proxy", "socks5h://x"}, "SOCKS5"},
		{[]string{"sub", "-t", "a", "-S"}, "SRV"},
		{[]string{"sub", "-t", "a", "--unix", "/tmp/s", "-h", "x"}, "--unix replaces"},
		{[]string{"sub", "-t", "a", "-D", "connect"}, "-D: want -D COMMAND IDENTIFIER VALUE"},
		{[]string{"sub", "-t", "a", "-D", "connect", "content-type", "x"}, "not a property of CONNECT"},
		{[]string{"sub", "-t", "a", "-D", "publish", "content-type", "x"}, "sub publishes nothing"},
		{[]string{"sub", "-t", "a", "-D", "unsubscribe", "user-property", "k", "v"}, "Unsubscribe takes no properties"},
		{[]string{"sub", "-t", "a", "-D", "subscribe", "subscription-identifier", "3"}, "an identifier of its own"},
		{[]string{"sub", "-t", "a", "-D", "subscribe", "content-type", "x"}, "not a property of SUBSCRIBE"},
		{[]string{"sub", "-t", "a", "-D", "connect", "receive-maximum", "0"}, "want a number from 1 to 65535"},
		{[]string{"sub", "-t", "a", "-D", "connect", "user-property", "k"}, "want a name and a value"},
		{[]string{"sub", "-t", "a", "-D", "bogus", "x", "y"}, `-D "bogus": unknown command`},
		{[]string{"sub", "-t", "a", "-x", "5", "-D", "connect", "session-expiry-interval", "6"}, "either with -x or with -D"},
		{[]string{"sub", "-t", "a", "extra"}, `unexpected argument "extra"`},
		{[]string{"sub", "-t"}, "flag needs an argument: -t"},
		{[]string{"sub", "-h"}, "flag needs an argument: -h"},
		{[]string{"pub", "-L", url, "-m", "x"}, "missing -t"},
		{[]string{"pub", "-L", url + "/a", "-t", "b", "-m", "x"}, "either in the -L URL or with -t"},
		{[]string{"pub", "-L", url, "-t", "a"}, "missing the message"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-l"}, "only one kind of message"},
		{[]string{"pub", "-L", url, "-t", "a", "-n", "-s"}, "only one kind of message"},
		{[]string{"pub", "-L", url, "-t", "a/+", "-m", "x"}, "contains a wildcard"},
		{[]string{"pub", "-L", url, "-t", "a", "-l", "--repeat", "2"}, "not to -l"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "--repeat", "0"}, "want a number from 1"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "--repeat-delay", "1"}, "--repeat-delay needs --repeat"},
		{[]string{"pub", "-L", url, "-t", "a", "-f", "/nonexistent/file"}, "-f: open /nonexistent/file"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-P", "pw"}, "needs a user name"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-M", "0"}, "want a number from 1 to 65535"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-D", "publish", "payload-format-indicator", "2"}, "0 (bytes) or 1 (UTF-8)"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-D", "subscribe", "user-property", "k", "v"}, "pub sends no SUBSCRIBE"},
		{[]string{"pub", "-L", url, "-t", "a", "-m", "x", "-D", "puback", "reason-string", "x"}, "sends its own PUBACK"},
		{[]string{"ping", "-c", "0"}, "want a number from 1"},
		{[]string{"ping", "-i", "1ms"}, "must be at least 10ms"},
		{[]string{"check", "--pings", "-1"}, "want a number from 0 to 1000"},
		{[]string{"demo", "--duration", "x"}, `invalid value "x" for flag -duration`},
		{[]string{"demo", "--keepalive", "0"}, "must be at least 1s"},
		{[]string{"demo", "--svg", ""}, "--svg: empty file name"},
		{[]string{"demo", "now"}, `unexpected argument "now"`},
		{[]string{"broker", "-l", "nonsense"}, `-l "nonsense": want HOST:PORT`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runSync(t, nil, tc.args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.True(t, strings.HasSuffix(stderr, "\n"))
		})
	}
}

// A password given on the command line never shows up in an error.
func TestPasswordNeverEchoed(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-secret"
	for _, args := range [][]string{
		{"sub", "-t", "a", "-P" + pw},
		{"sub", "-t", "a", "-L", "mqtt://bob:" + pw + "@127.0.0.1:99999"},
		{"sub", "-t", "a", "-L", "gopher://bob:" + pw + "@x"},
		{"sub", "-t", "a", "-L", "bob:" + pw + "@x"},
		{"pub", "-t", "a", "-m", "x", "-u", "bob", "-P", "hunter2", "secret"},
		{"pub", "-t", "a", "-m", "x", "-u", "bob", "-P", pw, "-L", "mqtt://x", "-h", "y"},
		{"ping", "-u", "bob", "-P", pw, "-c", "0"},
	} {
		t.Run(strings.Join(args[:3], " "), func(t *testing.T) {
			code, stdout, stderr := runSync(t, nil, args...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.NotEmpty(t, stderr)
			assert.NotContains(t, stderr, "hunter2")
			assert.NotContains(t, stderr, "secret")
		})
	}
}
