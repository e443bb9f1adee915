//go:build unix

package childproc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func outFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func sh(t *testing.T, script string, out *os.File) *Process {
	t.Helper()
	p, err := Start("/bin/sh", []string{"sh", "-c", script}, CleanEnv(), t.TempDir(), out)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.KillGroup()
		p.Wait(10 * time.Second)
	})
	return p
}

// alive reports whether pid names a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		require.True(t, time.Now().Before(deadline), "process %d still alive", pid)
		time.Sleep(PollInterval)
	}
}

func TestExitStatusAndOutput(t *testing.T) {
	out := outFile(t)
	p := sh(t, "echo to-the-file; echo to-stderr >&2; exit 3", out)
	require.True(t, p.Wait(10*time.Second))
	assert.Equal(t, "exit status 3", p.Describe())
	assert.True(t, p.Poll(), "Poll after the exit")
	b, err := os.ReadFile(out.Name())
	require.NoError(t, err)
	assert.Equal(t, "to-the-file\nto-stderr\n", string(b))
	p.Signal(syscall.SIGTERM) // nothing once exited
}

func TestSignalAndWaitBound(t *testing.T) {
	p := sh(t, "exec sleep 60", outFile(t))
	assert.Positive(t, p.Pid())
	assert.False(t, p.Poll())
	assert.Equal(t, "running", p.Describe())
	assert.False(t, p.Wait(50*time.Millisecond), "still running")
	p.Signal(syscall.SIGTERM)
	require.True(t, p.Wait(10*time.Second))
	assert.Equal(t, "killed by signal terminated", p.Describe())
}

// KillGroup reaches what the child started, which stays in its group.
func TestKillGroupKillsGrandchildren(t *testing.T) {
	out := outFile(t)
	p := sh(t, "sleep 60 & echo $!; wait", out)
	grandchild := readPid(t, out.Name())
	require.True(t, alive(grandchild))
	p.KillGroup()
	require.True(t, p.Wait(10*time.Second))
	assert.Equal(t, "killed by signal killed", p.Describe())
	waitGone(t, grandchild)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if line, _, ok := strings.Cut(string(b), "\n"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			require.NoError(t, err, "%q", b)
			return pid
		}
		require.True(t, time.Now().Before(deadline), "no pid written to %s", path)
		time.Sleep(PollInterval)
	}
}

// On Linux the kernel kills a child when the process that started it
// dies: this test runs itself as a helper that starts a child and exits
// without stopping it.
func TestChildDiesWithItsParent(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestHelperStartsChildAndExits$")
	cmd.Env = append(os.Environ(), "CHILDPROC_HELPER=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	pid := 0
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "child "); ok {
			pid, err = strconv.Atoi(v)
			require.NoError(t, err)
		}
	}
	require.NoError(t, cmd.Wait())
	require.Positive(t, pid, "the helper printed its child's pid")
	waitGone(t, pid)
}

func TestHelperStartsChildAndExits(t *testing.T) {
	if os.Getenv("CHILDPROC_HELPER") != "1" {
		t.Skip("run by TestChildDiesWithItsParent")
	}
	p, err := Start("/bin/sleep", []string{"sleep", "60"}, CleanEnv(), "/", os.Stderr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("child %d\n", p.Pid())
	os.Exit(0) // no cleanup, no Wait: the kernel must kill the child
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(5, map[int]bool{})
	require.NoError(t, err)
	require.Len(t, ports, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		assert.False(t, seen[p], "distinct")
		seen[p] = true
		assert.False(t, reserved(p))
		if ephemeralLow() > portLow {
			assert.Less(t, p, ephemeralLow(), "below the ephemeral range")
			assert.GreaterOrEqual(t, p, portLow)
		}
	}
	again, err := FreePorts(50, seen)
	require.NoError(t, err)
	for _, p := range again {
		assert.False(t, seen[p], "a used port is not picked again")
	}
	assert.True(t, reserved(4369) && reserved(35672) && reserved(35682) && !reserved(35683))
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("RABBITMQ_NODENAME", "x@y")
	t.Setenv("ERL_FLAGS", "+S 1")
	t.Setenv("KEPT_VARIABLE", "1")
	t.Setenv("PATH", "/opt/bin")
	env := CleanEnv("RABBITMQ_", "ERL_")
	joined := "\n" + strings.Join(env, "\n") + "\n"
	assert.NotContains(t, joined, "RABBITMQ_NODENAME")
	assert.NotContains(t, joined, "ERL_FLAGS")
	assert.NotContains(t, joined, "\nHOME=")
	assert.Contains(t, joined, "\nKEPT_VARIABLE=1\n")
	assert.Contains(t, joined, "\nPATH=/opt/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n")
}
