package activemq

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
	shownLogLines   = 300
)

// notePrefix starts the lines this package adds to a broker's log.
const notePrefix = "--- internal/activemq: "

func (b *Broker) note(text string) { b.log.Note(text) }

// Log returns the broker's whole log: everything the JVM printed, each
// start's and stop's notes of this package between.
func (b *Broker) Log() string { return b.log.String() }

// LogTail returns the last lines of the broker's log.
func (b *Broker) LogTail(lines int) string { return b.log.Tail(lines) }

func (b *Broker) logContainsSince(num int, substr string) bool {
	return b.log.ContainsSince(fmt.Sprintf("start #%d of ", num), substr)
}

// withLog adds to err the first error lines of the broker's last start
// and the last lines of its log.
func (b *Broker) withLog(err error) error {
	first := ""
	if lines := b.log.FirstSince("start #", "ERROR", errorFirstLines); len(lines) > 0 {
		first = fmt.Sprintf("\nfirst errors logged since the start:\n%s", strings.Join(lines, "\n"))
	}
	return fmt.Errorf("%w%s\nlast %d lines of %s:\n%s", err, first, errorLogLines, b.log.Path(), b.LogTail(errorLogLines))
}

// showLog logs the end of b's log on tb if the test failed or LogEnv is 1.
func showLog(tb testing.TB, b *Broker) {
	if tb.Failed() || os.Getenv(LogEnv) == "1" {
		tb.Logf("activemq broker %s, last %d lines of %s:\n%s", b.name, shownLogLines, b.log.Path(), b.LogTail(shownLogLines))
	}
}
