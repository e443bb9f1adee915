package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-help"}, {"-h"}, {"help"},
		{"help", "demo"}, {"help", "sub"}, {"help", "pub"}, {"help", "broker"},
		{"demo", "--help"}, {"sub", "--help"}, {"pub", "--help"}, {"broker", "--help"},
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

// Each command's help mentions every flag the command accepts (and
// TestBadCommandLine shows that unknown ones are refused).
func TestHelpListsEveryFlag(t *testing.T) {
	flags := map[string][]string{
		"demo":   {"--duration", "--keepalive", "-k", "--interval", "--json", "--help"},
		"sub":    {"-t", "--topic", "-q", "--qos", "-C", "--count", "-v", "--format", "-s", "--url", "-h", "--host", "-p", "--port", "-i", "--id", "-u", "--username", "-P", "--pw", "-k", "--keepalive", "-d", "--debug", "--help"},
		"pub":    {"-t", "--topic", "-m", "--message", "-l", "--stdin", "-q", "--qos", "-r", "--retain", "--timeout", "-s", "--url", "-h", "--host", "-p", "--port", "-i", "--id", "-u", "--username", "-P", "--pw", "-k", "--keepalive", "-d", "--debug", "--help"},
		"broker": {"-l", "--listen", "--help"},
	}
	for cmd, names := range flags {
		c, ok := findCommand(cmd)
		require.True(t, ok)
		for _, n := range names {
			assert.True(t, strings.Contains(c.help, n+" ") || strings.Contains(c.help, n+","), "help of %s lacks %s", cmd, n)
		}
	}
}

func TestBadCommandLine(t *testing.T) {
	const url = "mqtt://127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: mqttkeep COMMAND"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"--bogus"}, `unknown flag "--bogus"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"sub", "-x", "-t", "a"}, "flag provided but not defined: -x"},
		{[]string{"sub", "-s", "gopher://x", "-t", "a"}, `unsupported scheme "gopher"`},
		{[]string{"sub", "-s", "localhost:1883", "-t", "a"}, "want a URL like mqtt://host:1883"},
		{[]string{"sub", "-s", "mqtt://:1883", "-t", "a"}, "no host"},
		{[]string{"sub", "-s", url}, "missing -t"},
		{[]string{"sub", "-s", url, "-t", "a/#/b"}, "# must be the last level"},
		{[]string{"sub", "-s", url, "-t", "a", "-q", "3"}, "QoS must be 0, 1 or 2"},
		{[]string{"sub", "-s", url, "-t", "a", "-h", "x"}, "either with -s URL or with -h HOST -p PORT"},
		{[]string{"sub", "-t", "a", "-p", "70000"}, "want a port from 1 to 65535"},
		{[]string{"sub", "-t", "a", "-k", "1.5s"}, "whole seconds"},
		{[]string{"sub", "-t", "a", "--format", "xml"}, `--format "xml"`},
		{[]string{"sub", "-t", "a", "extra"}, `unexpected argument "extra"`},
		{[]string{"sub", "-t"}, "flag needs an argument: -t"},
		{[]string{"sub", "-h"}, "flag needs an argument: -h"},
		{[]string{"pub", "-s", url, "-m", "x"}, "missing -t"},
		{[]string{"pub", "-s", url, "-t", "a"}, "missing -m MESSAGE or --stdin"},
		{[]string{"pub", "-s", url, "-t", "a", "-m", "x", "--stdin"}, "not both"},
		{[]string{"pub", "-s", url, "-t", "a/+", "-m", "x"}, "contains a wildcard"},
		{[]string{"pub", "-s", url, "-t", "a", "-m", "x", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		{[]string{"pub", "-s", url, "-t", "a", "-m", "x", "-P", "pw"}, "needs a user name"},
		{[]string{"demo", "--duration", "x"}, `invalid value "x" for flag -duration`},
		{[]string{"demo", "--keepalive", "0"}, "must be at least 1s"},
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
	const pw = "hunter2-secret"
	for _, args := range [][]string{
		{"sub", "-t", "a", "-P" + pw},
		{"sub", "-t", "a", "-s", "mqtt://bob:" + pw + "@127.0.0.1:99999"},
		{"sub", "-t", "a", "-s", "gopher://bob:" + pw + "@x"},
		{"sub", "-t", "a", "-s", "bob:" + pw + "@x"},
		{"pub", "-t", "a", "-m", "x", "-u", "bob", "-P", "hunter2", "secret"},
		{"pub", "-t", "a", "-m", "x", "-u", "bob", "-P", pw, "-s", "mqtt://x", "-h", "y"},
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
