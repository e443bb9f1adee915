package rabbitmq

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Log sizes: the lines an error carries, and the lines shown at the end
// of a failed test.
const (
	errorLogLines   = 40
	errorFirstLines = 15
	shownLogLines   = 400
)

// notePrefix starts the lines this package adds to a node's log.
const notePrefix = "--- internal/rabbitmq: "

// note appends a line of this package's own to the node's log.
func (n *Node) note(text string) { n.log.Note(text) }

// Log returns the node's whole log: everything the node printed (its log
// goes to the console here), each start's and stop's notes of this
// package between.
func (n *Node) Log() string { return n.log.String() }

// LogTail returns the last lines of the node's log.
func (n *Node) LogTail(lines int) string { return n.log.Tail(lines) }

// logContainsSince reports whether the log has substr after the note of
// start #num.
func (n *Node) logContainsSince(num int, substr string) bool {
	return n.log.ContainsSince(fmt.Sprintf("start #%d of ", num), substr)
}

// withLog adds to err the first error lines of the node's last start and
// the last lines of its log.
func (n *Node) withLog(err error) error {
	first := ""
	if lines := n.log.FirstSince("start #", "[error]", errorFirstLines); len(lines) > 0 {
		first = fmt.Sprintf("\nfirst errors logged since the start:\n%s", strings.Join(lines, "\n"))
	}
	return fmt.Errorf("%w%s\nlast %d lines of %s:\n%s", err, first, errorLogLines, n.log.Path(), n.LogTail(errorLogLines))
}

// showLog logs the end of n's log on tb if the test failed or LogEnv is 1.
func showLog(tb testing.TB, n *Node) {
	if tb.Failed() || os.Getenv(LogEnv) == "1" {
		tb.Logf("rabbitmq node %s, last %d lines of %s:\n%s", n.name, shownLogLines, n.log.Path(), n.LogTail(shownLogLines))
	}
}
