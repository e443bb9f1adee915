package childproc

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLog(t *testing.T) {
	l, err := OpenLog(filepath.Join(t.TempDir(), "console.log"), "--- test: ")
	require.NoError(t, err)
	assert.Equal(t, "--- test: ", l.Prefix())
	l.Note("start #1 of x")
	fmt.Fprintln(l.File(), "[error] first failure")
	for i := range 50 {
		fmt.Fprintf(l.File(), "line %d\n", i)
	}
	l.Note("start #2 of x")
	fmt.Fprintln(l.File(), "[error] second failure")
	fmt.Fprintln(l.File(), "[error] second again")
	fmt.Fprintln(l.File(), "last line")

	tail := l.Tail(3)
	assert.Equal(t, "[error] second failure\n[error] second again\nlast line", tail)
	assert.Contains(t, l.Tail(1000), "line 0", "all of a short log")
	assert.True(t, l.ContainsSince("start #2 of ", "second again"))
	assert.False(t, l.ContainsSince("start #2 of ", "first failure"), "only after the last such note")
	assert.False(t, l.ContainsSince("start #3 of ", "last line"))
	assert.Equal(t, []string{"[error] second failure"}, l.FirstSince("start #", "[error]", 1))
	assert.Len(t, l.FirstSince("start #", "[error]", 10), 2)
	assert.Nil(t, l.FirstSince("no such note", "[error]", 10))
	assert.Equal(t, 2, strings.Count(l.String(), "--- test: start #"))
	require.NoError(t, l.Close())
	assert.Contains(t, l.String(), "last line", "readable after Close")
}
