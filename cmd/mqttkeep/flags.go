package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
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

// multiArg is a flag that takes more than one word, as mosquitto's
// "-D command identifier value" does. The flag package cannot parse it, so
// parseArgs takes such flags out of the command line first.
type multiArg struct {
	names []string // "D", "property"
	// take consumes the words after the flag and returns how many it used.
	take func(words []string) (int, error)
}

// parseArgs parses args into fs. When done is true the command must return
// code at once: help was printed (--help, exit 0) or the command line is
// bad (one line on stderr, exit 2). secret is a password given on the
// command line, never to be echoed.
func parseArgs(fs *flag.FlagSet, cmd string, args []string, s stdio, secret *string, multi ...multiArg) (code int, done bool) {
	args, err := extractMulti(fs, args, multi)
	if err == nil {
		err = fs.Parse(args)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		c, _ := findCommand(cmd)
		fmt.Fprint(s.out, c.help)
		return exitOK, true
	case err != nil:
		return usageFail(s, cmd, secretsIn(args).redact(err.Error()), secret), true
	case fs.NArg() > 0:
		if secret != nil && *secret != "" {
			// The stray word may be the rest of a password with a space.
			return usageFail(s, cmd, fmt.Sprintf("unexpected argument number %d (not shown: a password was given)", len(args)-fs.NArg()+1), nil), true
		}
		return usageFail(s, cmd, strayText(fs.Arg(0)), nil), true
	}
	return exitOK, false
}

// extractMulti takes the multi-word flags out of args, walking them as the
// flag package will (a flag that takes a value consumes the next word), and
// returns the rest for fs.Parse.
func extractMulti(fs *flag.FlagSet, args []string, multi []multiArg) ([]string, error) {
	if len(multi) == 0 {
		return args, nil
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			// The flag package stops here; so do we.
			return append(rest, args[i:]...), nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			rest = append(rest, a)
			continue
		}
		if m, ok := findMulti(multi, name); ok {
			n, err := m.take(args[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
			continue
		}
		rest = append(rest, a)
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			rest = append(rest, args[i])
		}
	}
	return rest, nil
}

func findMulti(multi []multiArg, name string) (multiArg, bool) {
	for _, m := range multi {
		for _, n := range m.names {
			if n == name {
				return m, true
			}
		}
	}
	return multiArg{}, false
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
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
// message (the command's streams hide them where they stand quoted, as
// an echoed flag value does; see secrets.redact).
func redactSecret(msg, secret string) string {
	if len(secret) < 3 {
		return msg
	}
	return strings.ReplaceAll(msg, secret, redacted)
}

// strayText words an unexpected argument: quoted, without the user
// information of a URL (or of user:password@host, or the tail of a
// password that held a space), with a hint for a URL.
func strayText(a string) string {
	if !strings.Contains(a, "@") {
		if strings.Contains(a, "://") {
			return fmt.Sprintf("unexpected argument %q (a broker URL goes after -L)", a)
		}
		return fmt.Sprintf("unexpected argument %q", a)
	}
	msg := fmt.Sprintf("unexpected argument %q", redactURL(a))
	if strings.Contains(a, "://") {
		msg += " (a broker URL goes after -L)"
	}
	return msg
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// anySet reports whether any of names was given.
func anySet(set map[string]bool, names ...string) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
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
// seconds ("60", as mosquitto's -k takes it; with fractions allowed,
// "0.5", where fractional is set).
type durationFlag struct {
	d          time.Duration
	wholeSecs  bool          // must be whole seconds
	fractional bool          // plain seconds may have a fraction ("0.25")
	min, max   time.Duration // inclusive bounds; max 0: none
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
	} else if x, err := strconv.ParseFloat(s, 64); f.fractional && err == nil && x >= 0 && x < math.MaxUint32 {
		d = time.Duration(x * float64(time.Second))
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

// countFlag is a whole number from min to max.
type countFlag struct {
	n        int
	min, max int
}

func (c *countFlag) String() string {
	if c == nil {
		return ""
	}
	return strconv.Itoa(c.n)
}

func (c *countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want a whole number")
	}
	if n < c.min || n > c.max {
		return fmt.Errorf("want a number from %d to %d", c.min, c.max)
	}
	c.n = n
	return nil
}

// stringsFlag collects a flag given several times (-t a -t b).
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// unsupportedFlag is a mosquitto flag the command knows but cannot honour:
// giving it is a usage error that says why (rather than "flag provided but
// not defined").
type unsupportedFlag struct {
	why    string
	isBool bool
}

func (u *unsupportedFlag) String() string   { return "" }
func (u *unsupportedFlag) Set(string) error { return errors.New("not supported: " + u.why) }
func (u *unsupportedFlag) IsBoolFlag() bool { return u.isBool }

// unsupported registers mosquitto flags this command refuses, with the
// reason.
func unsupported(fs *flag.FlagSet, why string, isBool bool, names ...string) {
	for _, n := range names {
		fs.Var(&unsupportedFlag{why: why, isBool: isBool}, n, why)
	}
}

// both registers one value under several names (-t and --topic).
func both(fs *flag.FlagSet, v flag.Value, usage string, names ...string) {
	for _, n := range names {
		fs.Var(v, n, usage)
	}
}

// boolVar registers a boolean under several names.
func boolVar(fs *flag.FlagSet, p *bool, usage string, names ...string) {
	for _, n := range names {
		fs.BoolVar(p, n, *p, usage)
	}
}

// stringVar registers a string under several names.
func stringVar(fs *flag.FlagSet, p *string, usage string, names ...string) {
	for _, n := range names {
		fs.StringVar(p, n, *p, usage)
	}
}
