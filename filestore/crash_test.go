package filestore_test

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

var crashKills = flag.Int("crashkills", 20, "TestCrash: how many times to SIGKILL the child (the long form: 200 or more)")

const (
	crashChildEnv = "FILESTORE_CRASH_CHILD" // the store directory
	crashWriters  = 4                       // goroutines applying in the child
	crashWindow   = 5                       // steps each writer keeps live
)

// crashOpts are the child's and the checker's options: small segments, so
// that kills land in rolls and compactions too.
func crashOpts() []filestore.Option {
	return []filestore.Option{filestore.WithSegmentSize(16 << 10)}
}

// crashKey is writer w's key for step i, half h (0 or 1).
func crashKey(w, i uint64, h uint64) uint64 { return w<<40 | i<<1 | h }

// crashValue is the value of step i of writer w, both halves. Every 16th
// step is large (a write of many pages, which a kill can cut short).
func crashValue(w, i uint64) []byte {
	pad := int(i % 50)
	if i%16 == 0 {
		pad = 64 << 10
	}
	return fmt.Appendf(nil, "w%d step %d %s", w, i, strings.Repeat("·", pad))
}

// crashState finds, for each writer, the last step whose records the store
// holds, and checks that the store holds exactly what that prefix of the
// writer's steps leaves: both halves of its last crashWindow steps.
func crashState(s mqttkeep.Store) ([crashWriters]uint64, error) {
	var last [crashWriters]uint64
	seen := map[uint64][]byte{}
	if err := s.Load(func(k uint64, v []byte) error {
		w, i := k>>40, (k&(1<<40-1))>>1
		if w >= crashWriters {
			return fmt.Errorf("unexpected key %x", k)
		}
		last[w] = max(last[w], i)
		seen[k] = append([]byte(nil), v...)
		return nil
	}); err != nil {
		return last, err
	}
	for w := range uint64(crashWriters) {
		n := last[w]
		for i := uint64(1); i <= n; i++ {
			for h := range uint64(2) {
				k := crashKey(w, i, h)
				v, ok := seen[k]
				switch {
				case i+crashWindow > n && !ok:
					return last, fmt.Errorf("writer %d: step %d of %d: half %d missing (a partial or lost step)", w, i, n, h)
				case i+crashWindow > n && string(v) != string(crashValue(w, i)):
					return last, fmt.Errorf("writer %d step %d: value %q", w, i, v)
				case i+crashWindow <= n && ok:
					return last, fmt.Errorf("writer %d: step %d should have been deleted by step %d", w, i, i+crashWindow)
				}
				delete(seen, k)
			}
		}
	}
	for k := range seen {
		return last, fmt.Errorf("unexpected record %x", k)
	}
	return last, nil
}

// crashChild is the child process: it reopens the store, goes on from
// where each writer stopped and reports every durable step that returned
// on stdout ("w i"), until it is killed.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	s, err := filestore.Open(dir, crashOpts()...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	last, err := crashState(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	for w := range uint64(crashWriters) {
		go func() {
			for i := last[w] + 1; ; i++ {
				v := crashValue(w, i)
				puts := []mqttkeep.Record{{Key: crashKey(w, i, 0), Value: v}, {Key: crashKey(w, i, 1), Value: v}}
				var dels []uint64
				if i > crashWindow {
					dels = []uint64{crashKey(w, i-crashWindow, 0), crashKey(w, i-crashWindow, 1)}
				}
				if err := s.Apply(puts, dels, true); err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d\n", w, i)
				out.Flush() // one write to the pipe: it survives the kill
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrash runs the child, kills it with SIGKILL at a random moment,
// reopens the store and checks that every step the child saw return is
// there, in order and whole; then again, -crashkills times.
func TestCrash(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acked [crashWriters]uint64
	var totalAcked, totalFound uint64
	var torn int
	for kill := range *crashKills {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); line != "ready\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("kill %d: child did not start: %q %v; stderr: %s", kill, line, err, stderr.String())
		}
		// A random moment: the event is the kill itself.
		time.Sleep(time.Duration(rng.Int64N(int64(60 * time.Millisecond))))
		_ = cmd.Process.Kill() // SIGKILL, our own child
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(line)
			w, _ := strconv.ParseUint(f[0], 10, 64)
			i, _ := strconv.ParseUint(f[1], 10, 64)
			if w >= crashWriters || i != acked[w]+1 && i <= acked[w] {
				t.Fatalf("child reported %q after step %d", line, acked[w])
			}
			acked[w] = max(acked[w], i)
			totalAcked++
		}
		_ = cmd.Wait()
		if strings.Contains(stderr.String(), "child:") {
			t.Fatalf("kill %d: child failed: %s", kill, stderr.String())
		}

		s, err := filestore.Open(dir, crashOpts()...)
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", kill, err)
		}
		last, err := crashState(s)
		st := s.Stats()
		if cerr := s.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		for w := range crashWriters {
			if last[w] < acked[w] {
				t.Fatalf("kill %d: writer %d: step %d returned but the store ends at step %d", kill, w, acked[w], last[w])
			}
			totalFound += last[w] - acked[w] // durable but not yet reported when killed
			acked[w] = last[w]
		}
		if st.TornBytes > 0 {
			torn++
		}
		t.Logf("kill %d: steps per writer %v, %d segments, %d bytes, %d torn bytes cut", kill, last, st.Segments, st.FileBytes, st.TornBytes)
	}
	t.Logf("%d kills, %d durable steps reported, %d more found that the kill kept from being reported; %d reopens cut a torn tail", *crashKills, totalAcked, totalFound, torn)
}
