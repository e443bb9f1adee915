package childproc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// tailBytes bounds how much of the end of a log Tail reads.
const tailBytes = 1 << 20

// Log is a broker's console log: the file its processes write their
// output to (appending, so every start's output follows the last), with
// the harness's own notes between, each a line starting with a time and
// the prefix given to OpenLog. Its methods are safe for concurrent use
// (notes are single appending writes).
type Log struct {
	path   string
	prefix string
	f      *os.File
}

// OpenLog opens (creating) the log at path, mode 0600; prefix starts the
// harness's notes, e.g. "--- internal/rabbitmq: ".
func OpenLog(path, prefix string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &Log{path: path, prefix: prefix, f: f}, nil
}

// File returns the file to give a child as its output.
func (l *Log) File() *os.File { return l.f }

// Path returns the log's path.
func (l *Log) Path() string { return l.path }

// Prefix returns the prefix of the harness's notes.
func (l *Log) Prefix() string { return l.prefix }

// Note appends a line of the harness's own.
func (l *Log) Note(text string) {
	_, _ = fmt.Fprintf(l.f, "%s %s%s\n", time.Now().UTC().Format("2006-01-02 15:04:05.000000"), l.prefix, text)
}

// Close closes the file; the log can still be read.
func (l *Log) Close() error { return l.f.Close() }

// String returns the whole log.
func (l *Log) String() string {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", l.path, err)
	}
	return string(b)
}

// Tail returns the last lines of the log (of its last MiB at most).
func (l *Log) Tail(lines int) string {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", l.path, err)
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

// ContainsSince reports whether the log has substr after the last note
// that starts with marker.
func (l *Log) ContainsSince(marker, substr string) bool {
	s := l.String()
	i := strings.LastIndex(s, l.prefix+marker)
	return i >= 0 && strings.Contains(s[i:], substr)
}

// FirstSince returns the first n lines that contain substr after the last
// note that starts with marker: the first errors of a failed start, which
// the end of its log (a crash report) often does not show.
func (l *Log) FirstSince(marker, substr string, n int) []string {
	s := l.String()
	i := strings.LastIndex(s, l.prefix+marker)
	if i < 0 {
		return nil
	}
	var out []string
	for _, line := range strings.Split(s[i:], "\n") {
		if len(out) == n {
			break
		}
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}
