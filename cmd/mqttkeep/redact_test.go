package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The reported case: a broker URL given where -L was meant (after -s,
// which takes no value) was echoed whole, password included, in
// "unexpected argument".
func TestStrayURLArgumentIsRedacted(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runSync(t, nil, "pub", "-s", "mqtt://u:s3cr3t/PW@127.0.0.1:1883", "-t", "x")
	assert.Equal(t, exitUsage, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, `unexpected argument "mqtt://[REDACTED]@127.0.0.1:1883"`)
	assert.NotContains(t, stderr, "s3cr3t")
}

// No form of a password on the command line comes out again: not in a
// flag error, a usage error, a URL error, a reconnect line, ping's or
// check's report, nor the -d debug log. Each case also checks that the
// command said something and ended with the status it should.
func TestSecretNeverEchoed(t *testing.T) {
	t.Parallel()
	const closed = "127.0.0.1:1" // nothing listens on port 1
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		secret string // what must not show; default s3cr3t
	}{
		// Stray words and flag errors.
		{"stray URL", []string{"pub", "-t", "a", "-m", "x", "mqtt://u:s3cr3t@" + closed}, exitUsage, ""},
		{"stray URL, / in the password", []string{"sub", "-t", "a", "mqtt://u:s3cr3t/x@" + closed}, exitUsage, ""},
		{"stray user:password@host", []string{"sub", "-t", "a", "u:s3cr3t@" + closed}, exitUsage, ""},
		{"stray URL with a space in the password", []string{"sub", "-t", "a", "mqtt://u:my s3cr3t@" + closed}, exitUsage, ""},
		{"-L's password split by a space", []string{"sub", "-t", "a", "-L", "mqtt://u:my", "s3cr3t@" + closed}, exitUsage, ""},
		{"stray word after -P", []string{"pub", "-t", "a", "-m", "x", "-u", "u", "-P", "my", "s3cr3t"}, exitUsage, ""},
		{"stray URL after an unknown flag", []string{"pub", "--bogus", "mqtt://u:s3cr3t@" + closed}, exitUsage, ""},
		{"unknown flag after -P", []string{"pub", "-u", "u", "-P", "s3cr3t", "--bogus"}, exitUsage, ""},
		{"-P glued", []string{"sub", "-t", "a", "-Ps3cr3t"}, exitUsage, ""},
		{"-P glued with =", []string{"sub", "-t", "a", "-Ps3cr3t=x"}, exitUsage, ""},
		{"--pw glued", []string{"sub", "-t", "a", "--pws3cr3t"}, exitUsage, ""},
		{"-P with three dashes", []string{"sub", "-t", "a", "---P=s3cr3t"}, exitUsage, ""},
		{"the password as another flag's value", []string{"pub", "-u", "u", "-P", "s3cr3t", "-k", "s3cr3t"}, exitUsage, ""},
		{"a quote in the password, echoed escaped", []string{"pub", "-u", "u", "-P", `s3"cr3t`, "-k", `s3"cr3t`}, exitUsage, `s3\"cr3t`},
		{"a short password, echoed quoted", []string{"pub", "-u", "u", "-P", "ab", "-k", "ab"}, exitUsage, `"ab"`},
		{"a short password glued", []string{"pub", "-Pab"}, exitUsage, "-Pab"},
		{"a URL as another flag's value", []string{"pub", "-t", "a", "-m", "x", "-k", "mqtt://u:s3cr3t@" + closed}, exitUsage, ""},
		{"a URL as the command", []string{"mqtt://u:s3cr3t@" + closed}, exitUsage, ""},
		{"-P before the command", []string{"-Ps3cr3t"}, exitUsage, ""},
		{"a URL as the help topic", []string{"help", "mqtt://u:s3cr3t@" + closed}, exitUsage, ""},

		// -L URLs that do not parse.
		{"-L, / in the password", []string{"pub", "-L", "mqtt://u:s3cr3t/x@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, ? in the password", []string{"pub", "-L", "mqtt://u:s3cr3t?x@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, # in the password", []string{"pub", "-L", "mqtt://u:s3cr3t#x@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, ? in a number-like password", []string{"pub", "-L", "mqtt://u:12?s3cr3t@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, a bad port", []string{"pub", "-L", "mqtt://u:s3cr3t@127.0.0.1:99999/t", "-m", "x"}, exitUsage, ""},
		{"-L, a bad scheme", []string{"pub", "-L", "gopher://u:s3cr3t@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, no scheme", []string{"pub", "-L", "u:s3cr3t@" + closed + "/t", "-m", "x"}, exitUsage, ""},
		{"-L, ws with a query", []string{"pub", "-L", "ws://u:s3cr3t@" + closed + "/mqtt?x", "-t", "a", "-m", "x"}, exitUsage, ""},
		{"-h with user information", []string{"pub", "-h", "u:s3cr3t@127.0.0.1", "-t", "a", "-m", "x"}, exitUsage, ""},

		// Usage errors found after the flags parsed.
		{"-P and a bad topic", []string{"sub", "-u", "u", "-P", "s3cr3t", "-t", "a/#/b"}, exitUsage, ""},
		{"-L and a bad topic", []string{"sub", "-L", "mqtt://u:s3cr3t@" + closed + "/a/#/b"}, exitUsage, ""},
		{"-L and -h", []string{"pub", "-L", "mqtt://u:s3cr3t@" + closed + "/t", "-h", "x", "-m", "x"}, exitUsage, ""},

		// Connection failures, reports and logs.
		{"pub, @ in the password", []string{"pub", "-L", "mqtt://u:s3cr3t@x@" + closed + "/t", "-m", "x"}, exitFail, ""},
		{"pub, percent-encoded password", []string{"pub", "-L", "mqtt://u:s3cr3t%2Fx@" + closed + "/t", "-m", "x", "-d"}, exitFail, ""},
		{"pub -P and -d", []string{"pub", "-L", "mqtt://" + closed, "-t", "a", "-m", "x", "-u", "u", "-P", "s3cr3t", "-d"}, exitFail, ""},
		{"pub --timeout, reconnect lines", []string{"pub", "-L", "mqtt://u:s3cr3t@" + closed + "/t", "-m", "x", "--timeout", "1500ms", "-d"}, exitFail, ""},
		{"sub -W, reconnect lines", []string{"sub", "-L", "mqtt://u:s3cr3t@" + closed + "/t", "-W", "1500ms", "-d"}, exitTimedOut, ""},
		{"ping", []string{"ping", "-L", "mqtt://u:s3cr3t@" + closed, "-c", "2", "-i", "0.05", "-W", "0.3", "-d"}, pingNoAnswer, ""},
		{"ping -P", []string{"ping", "-L", "mqtt://" + closed, "-u", "u", "-P", "s3cr3t", "-c", "1", "-W", "0.3"}, pingNoAnswer, ""},
		{"check", []string{"check", "-L", "mqtt://u:s3cr3t@" + closed, "--json", "-d"}, exitFail, ""},
		{"check over wss", []string{"check", "-L", "wss://u:s3cr3t@" + closed + "/mqtt"}, exitFail, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runSync(t, nil, tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			assert.NotEmpty(t, stdout+stderr)
			secret := tc.secret
			if secret == "" {
				secret = "s3cr3t"
			}
			for _, out := range []string{stdout, stderr} {
				assert.NotContains(t, out, secret)
			}
			if tc.code == exitUsage {
				assert.Empty(t, stdout)
				assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			}
		})
	}
}
