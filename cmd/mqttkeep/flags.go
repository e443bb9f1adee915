package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttkeep/mqttkeep"
)

// usageError is a bad command line: reported on one line, exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a flag set that prints nothing by itself: parseArgs
// reports errors on one line and help comes from help.go.
func newFlagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet("mqttkeep "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args into fs. When done is true the command must return
// code at once: help was printed (--help, exit 0) or the command line is
// bad (one line on stderr, exit 2). secret is a password given on the
// command line, never to be echoed.
func parseArgs(fs *flag.FlagSet, cmd string, args []string, s stdio, secret *string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c, _ := findCommand(cmd)
		fmt.Fprint(s.out, c.help)
		return exitOK, true
	case err != nil:
		return usageFail(s, cmd, redactArgs(err.Error(), args), secret), true
	case fs.NArg() > 0:
		if secret != nil && *secret != "" {
			// The stray word may be the rest of a password with a space.
			return usageFail(s, cmd, fmt.Sprintf("unexpected argument number %d (not shown: a password was given)", len(args)-fs.NArg()+1), nil), true
		}
		return usageFail(s, cmd, fmt.Sprintf("unexpected argument %q", fs.Arg(0)), nil), true
	}
	return exitOK, false
}

// usageFail reports a bad command line on one line of stderr and returns
// exit status 2.
func usageFail(s stdio, cmd, msg string, secret *string) int {
	if secret != nil {
		msg = redactSecret(msg, *secret)
	}
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
	fmt.Fprintf(s.err, "mqttkeep %s: %s (see 'mqttkeep %s --help')\n", cmd, msg, cmd)
	return exitUsage
}

// redactSecret hides every occurrence of a password in msg. Very short
// passwords are not searched for: hiding every "a" would garble the
// message, and no message repeats a flag value anyway.
func redactSecret(msg, secret string) string {
	if len(secret) < 3 {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[REDACTED]")
}

// redactArgs hides the value glued to a password flag ("-Psecret", which
// the flag package reports as an unknown flag) in a flag error message.
func redactArgs(msg string, args []string) string {
	for _, a := range args {
		for _, p := range []string{"-P", "--P", "-pw", "--pw"} {
			if rest, ok := strings.CutPrefix(a, p); ok && rest != "" && !strings.HasPrefix(rest, "=") {
				msg = strings.ReplaceAll(msg, a, p+"[REDACTED]")
			}
		}
	}
	return msg
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// qosFlag is -q: 0, 1 or 2.
type qosFlag byte

func (q *qosFlag) String() string { return strconv.Itoa(int(*q)) }

func (q *qosFlag) Set(s string) error {
	switch s {
	case "0", "1", "2":
		*q = qosFlag(s[0] - '0')
		return nil
	}
	return errors.New("QoS must be 0, 1 or 2")
}

// durationFlag is a duration given as Go syntax ("2s", "1m30s") or as plain
// seconds ("60", as mosquitto's -k takes it).
type durationFlag struct {
	d         time.Duration
	wholeSecs bool          // must be whole seconds
	min, max  time.Duration // inclusive bounds; max 0: none
}

func (f *durationFlag) String() string {
	if f == nil {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	var d time.Duration
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return errors.New("want a duration like 2s, 1m or plain seconds")
	}
	switch {
	case d < f.min:
		return fmt.Errorf("must be at least %v", f.min)
	case f.max > 0 && d > f.max:
		return fmt.Errorf("must be at most %v", f.max)
	case f.wholeSecs && d%time.Second != 0:
		return errors.New("must be whole seconds")
	}
	f.d = d
	return nil
}

// stringsFlag collects a flag given several times (-t a -t b).
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// connFlags are the connection flags shared by sub and pub, named after
// mosquitto_sub/mosquitto_pub, plus -s URL.
type connFlags struct {
	url       string
	host      string
	port      int
	clientID  string
	user      string
	password  string
	keepAlive durationFlag
	debug     bool
}

func (c *connFlags) register(fs *flag.FlagSet) {
	c.keepAlive = durationFlag{d: mqttkeep.DefaultKeepAlive, wholeSecs: true, max: 65535 * time.Second}
	for _, n := range []string{"s", "url"} {
		fs.StringVar(&c.url, n, "", "broker URL")
	}
	for _, n := range []string{"h", "host"} {
		fs.StringVar(&c.host, n, "localhost", "broker host")
	}
	for _, n := range []string{"p", "port"} {
		fs.IntVar(&c.port, n, 1883, "broker port")
	}
	for _, n := range []string{"i", "id"} {
		fs.StringVar(&c.clientID, n, "", "client ID")
	}
	for _, n := range []string{"u", "username"} {
		fs.StringVar(&c.user, n, "", "user name")
	}
	for _, n := range []string{"P", "pw"} {
		fs.StringVar(&c.password, n, "", "password")
	}
	for _, n := range []string{"k", "keepalive"} {
		fs.Var(&c.keepAlive, n, "keep alive")
	}
	for _, n := range []string{"d", "debug"} {
		fs.BoolVar(&c.debug, n, false, "debug log")
	}
}

// options turns the connection flags into client options. The error is a
// *usageError; it never contains the password.
func (c *connFlags) options(fs *flag.FlagSet, logTo io.Writer) ([]mqttkeep.Option, error) {
	set := flagsSet(fs)
	var server, urlUser, urlPass string
	if set["s"] || set["url"] {
		if set["h"] || set["host"] || set["p"] || set["port"] {
			return nil, usagef("give the broker either with -s URL or with -h HOST -p PORT, not both")
		}
		var err error
		if server, urlUser, urlPass, err = parseServer(c.url); err != nil {
			return nil, err
		}
	} else {
		if c.host == "" {
			return nil, usagef("-h: empty host name")
		}
		if c.port < 1 || c.port > 65535 {
			return nil, usagef("-p %d: want a port from 1 to 65535", c.port)
		}
		server = "mqtt://" + net.JoinHostPort(c.host, strconv.Itoa(c.port))
	}
	user, pass := urlUser, urlPass
	if set["u"] || set["username"] {
		user = c.user
	}
	if set["P"] || set["pw"] {
		pass = c.password
	}
	if pass != "" && user == "" {
		return nil, usagef("a password (-P) needs a user name (-u)")
	}
	opts := []mqttkeep.Option{mqttkeep.WithServer(server), mqttkeep.WithKeepAlive(c.keepAlive.d)}
	if c.clientID != "" {
		if len(c.clientID) > 65535 || !utf8.ValidString(c.clientID) || strings.ContainsRune(c.clientID, 0) {
			return nil, usagef("-i: the client ID must be valid UTF-8 without NUL, at most 65535 bytes")
		}
		opts = append(opts, mqttkeep.WithClientID(c.clientID))
	}
	if user != "" {
		opts = append(opts, mqttkeep.WithCredentials(user, pass))
	}
	if c.debug {
		opts = append(opts, mqttkeep.WithLogger(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return opts, nil
}

// parseServer checks the shape of a -s URL and splits off its user
// information, which the library wants as credentials. Which schemes are
// supported (mqtt://, tcp://, and whatever else the library dials) is left
// to mqttkeep.New. Errors never repeat the user information.
func parseServer(raw string) (server, user, pass string, err error) {
	shown := redactURL(raw)
	if !strings.Contains(raw, "://") {
		return "", "", "", usagef("-s %q: want a URL like mqtt://host:1883", shown)
	}
	u, perr := url.Parse(raw)
	if perr != nil {
		return "", "", "", usagef("-s %q: not a valid URL (want mqtt://host[:port])", shown)
	}
	if u.Hostname() == "" {
		return "", "", "", usagef("-s %q: no host", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "", "", usagef("-s %q: port %q is not a number from 1 to 65535", shown, p)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", usagef("-s %q: unexpected query or fragment", shown)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	return u.String(), user, pass, nil
}

// optionErrText words an error from mqttkeep.New for the command line:
// the library names its options, the user knows the flags.
func optionErrText(err error) string {
	msg := errText(err)
	for option, flag := range map[string]string{
		"WithServers": "-s", "WithServer": "-s", "WithClientID": "-i",
		"WithKeepAlive": "-k", "WithCredentials": "-u/-P",
	} {
		if rest, ok := strings.CutPrefix(msg, "invalid option "+option+": "); ok {
			if rest, ok := strings.CutPrefix(rest, "server URL "); ok {
				return flag + " " + rest
			}
			return flag + ": " + rest
		}
	}
	return msg
}

// redactURL hides the user information of a URL string.
func redactURL(raw string) string { return mqttkeep.RedactURL(raw) }

// validateFilter checks a topic filter as Subscribe will, so that a bad
// -t is a usage error before anything is sent.
func validateFilter(f string) error { return mqttkeep.ValidateTopicFilter(f) }

// validateTopicName checks a topic to publish to as Publish will.
func validateTopicName(t string) error { return mqttkeep.ValidateTopicName(t) }

// errText is an error's message without the library's repeated
// "mqttkeep: " prefixes, for one-line reports.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "mqttkeep: ", "")
}

// isFinal reports whether err is a refusal that retrying cannot fix (bad
// credentials, not authorized, ...): the client has stopped.
func isFinal(err error) bool {
	var rc *mqttkeep.ReasonCodeError
	return errors.As(err, &rc) && rc.Final()
}
