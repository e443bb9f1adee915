package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Exit statuses common to every command (sub and pub add mosquitto's:
// the CONNACK reason code of a refusal, 27 for sub -W).
const (
	exitOK    = 0 // success
	exitFail  = 1 // the command ran and failed: a message not delivered, the demo lost messages, no connection
	exitUsage = 2 // bad command line: unknown command or flag, bad value, missing flag
)

// stdio is the command's standard streams; run gets them as parameters so
// that tests can call it in-process. out and err hide the passwords of
// the command line (see secrets); messages, sub's output, go to data as
// they came.
type stdio struct {
	in       io.Reader
	out, err io.Writer
	data     io.Writer // stdout, unredacted: the messages sub prints
}

// command is one subcommand of mqttkeep.
type command struct {
	name    string
	summary string
	help    string // full help, printed by "mqttkeep help NAME" and "mqttkeep NAME --help"
	run     func(ctx context.Context, args []string, s stdio) int
}

// commands returns the subcommands, in the order the help lists them.
func commands() []command {
	return []command{
		{"demo", "watch the library keep a connection alive through a dead link and a broker restart", demoHelp, runDemo},
		{"sub", "subscribe and print messages (like mosquitto_sub)", subHelp, runSub},
		{"pub", "publish a message, or one per line of stdin (like mosquitto_pub)", pubHelp, runPub},
		{"ping", "send PINGREQs to a broker and report the round trips, like ping(8)", pingHelp, runPing},
		{"check", "connect once and show what the broker enforces and offers", checkHelp, runCheck},
		{"broker", "run an embedded MQTT broker for local experiments", brokerHelp, runBroker},
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run is the whole program; main only adds the signal context and exits
// with the status run returns. ctx ends on Ctrl-C or SIGTERM.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	// Whatever the command says, on either stream, passes through one
	// filter that knows every password on its command line: no message,
	// log line or report repeats one, however it was given.
	secrets := secretsIn(args)
	out := &lockedWriter{w: stdout}
	s := stdio{in: stdin, out: &redactingWriter{w: out, secrets: secrets},
		err: &redactingWriter{w: &lockedWriter{w: stderr}, secrets: secrets}, data: out}
	if len(args) == 0 {
		fmt.Fprint(s.err, shortUsage())
		return exitUsage
	}
	switch name := args[0]; name {
	case "help", "-help", "--help", "-h":
		if name == "help" && len(args) > 1 {
			c, ok := findCommand(args[1])
			if !ok {
				fmt.Fprintf(s.err, "mqttkeep help: unknown command %q (see 'mqttkeep --help')\n", args[1])
				return exitUsage
			}
			fmt.Fprint(s.out, c.help)
			return exitOK
		}
		fmt.Fprint(s.out, topHelp())
		return exitOK
	default:
		c, ok := findCommand(name)
		if !ok {
			what := "command"
			if strings.HasPrefix(name, "-") {
				what = "flag"
			}
			fmt.Fprintf(s.err, "mqttkeep: unknown %s %q (see 'mqttkeep --help')\n", what, name)
			return exitUsage
		}
		return c.run(ctx, args[1:], s)
	}
}

// lockedWriter serialises writes: hooks, message handlers and the main
// goroutine all report on the same stream, one whole line per Write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
