package rabbitmq

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Log sizes: the lines an error carries, and the lines shown at the end
// of a failed test.
const (
	errorLogLines = 40
	shownLogLines = 400
	// tailBytes bounds how much of the end of a log is read for a tail.
	tailBytes = 1 << 20
)

// notePrefix starts the lines this package adds to a node's log.
const notePrefix = "--- internal/rabbitmq: "

// note appends a line of this package's own to the node's log.
func (n *Node) note(text string) {
	_, _ = fmt.Fprintf(n.log, "%s %s%s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000000"), notePrefix, text)
}

// logPath returns the path of the node's console log: everything the node
// printed, each start's and stop's notes of this package between.
func (n *Node) logPath() string { return filepath.Join(n.dir, "console.log") }

// Log returns the node's whole log.
func (n *Node) Log() string {
	b, err := os.ReadFile(n.logPath())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", n.logPath(), err)
	}
	return string(b)
}

// LogTail returns the last lines of the node's log (up to 1 MiB of it).
func (n *Node) LogTail(lines int) string {
	f, err := os.Open(n.logPath())
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", n.logPath(), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-tailBytes, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return err.Error()
	}
	b = bytes.TrimRight(b, "\n")
	for i, cut := len(b), 0; i > 0; i-- {
		if b[i-1] == '\n' {
			cut++
			if cut == lines {
				return string(b[i:])
			}
		}
	}
	return string(b)
}

// logContainsSince reports whether the log has substr after the note of
// start #num.
func (n *Node) logContainsSince(num int, substr string) bool {
	log := n.Log()
	marker := fmt.Sprintf("%sstart #%d of ", notePrefix, num)
	i := strings.LastIndex(log, marker)
	return i >= 0 && strings.Contains(log[i:], substr)
}

// withLog adds the last lines of the node's log to err.
func (n *Node) withLog(err error) error {
	return fmt.Errorf("%w\nlast %d lines of %s:\n%s", err, errorLogLines, n.logPath(), n.LogTail(errorLogLines))
}

// showLog logs the end of n's log on tb if the test failed or LogEnv is 1.
func showLog(tb testing.TB, n *Node) {
	if tb.Failed() || os.Getenv(LogEnv) == "1" {
		tb.Logf("rabbitmq node %s, last %d lines of %s:\n%s", n.name, shownLogLines, n.logPath(), n.LogTail(shownLogLines))
	}
}
