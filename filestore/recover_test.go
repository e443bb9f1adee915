package filestore_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// writeSteps applies n steps (step i puts key i and deletes key i-3) and
// closes the store.
func writeSteps(t *testing.T, dir string, n int, opts ...filestore.Option) {
	t.Helper()
	s, err := filestore.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		var dels []uint64
		if i >= 3 {
			dels = []uint64{i - 3}
		}
		if err := s.Apply([]mqttkeep.Record{{Key: i, Value: fmt.Appendf(nil, "value %d", i)}}, dels, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// stepsIn checks that dir holds what a prefix of writeSteps' steps leaves
// and returns its length.
func stepsIn(t *testing.T, s *filestore.Store) int {
	t.Helper()
	got := contents(t, s)
	n := 0
	for k := range got {
		n = max(n, int(k)+1)
	}
	for i := max(0, n-3); i < n; i++ {
		if string(got[uint64(i)]) != fmt.Sprintf("value %d", i) {
			t.Fatalf("prefix of %d steps: key %d = %q", n, i, got[uint64(i)])
		}
	}
	if len(got) != min(n, 3) {
		t.Fatalf("prefix of %d steps: %d records", n, len(got))
	}
	return n
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	m, _ := filepath.Glob(filepath.Join(from, "*.seg"))
	for _, p := range m {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestTornTail cuts the last segment at every length: Open recovers the
// longest whole prefix of steps, silently, and cuts the file there.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	const steps = 8
	writeSteps(t, src, steps)
	segs := segments(t, src)
	full, err := os.ReadFile(segs[len(segs)-1])
	if err != nil {
		t.Fatal(err)
	}
	prev := -1
	for cut := 0; cut <= len(full); cut++ {
		dir := copyDir(t, src)
		last := segments(t, dir)[len(segs)-1]
		if err := os.Truncate(last, int64(cut)); err != nil {
			t.Fatal(err)
		}
		s, err := filestore.Open(dir)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		n := stepsIn(t, s)
		if n < prev {
			t.Fatalf("cut at %d: %d steps, fewer than a shorter cut's %d", cut, n, prev)
		}
		prev = n
		if cut%8 != 0 {
			_ = s.Close()
			continue
		}
		// The store goes on after the cut.
		if err := s.Apply([]mqttkeep.Record{{Key: 1000, Value: []byte("after")}}, nil, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir)
		if v, err := s.Get(1000); err != nil || string(v) != "after" {
			t.Fatalf("cut at %d: the step after recovery: %q, %v", cut, v, err)
		}
		_ = s.Close()
	}
	if prev != steps {
		t.Fatalf("the whole file gave %d steps, want %d", prev, steps)
	}
}

// TestGarbageTail: zeros or random bytes after the last frame (what a
// crash can leave) are cut off.
func TestGarbageTail(t *testing.T) {
	for name, tail := range map[string][]byte{
		"zeros":  make([]byte, 4096),
		"random": []byte("\x13\x00\x00\x00garbage that is not a frame at all"),
		"length": {0xff, 0xff, 0xff, 0x7f},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeSteps(t, dir, 10)
			segs := segments(t, dir)
			f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.Write(tail)
			_ = f.Close()
			s := open(t, dir)
			if n := stepsIn(t, s); n != 10 {
				t.Fatalf("%d steps, want 10", n)
			}
		})
	}
}

// TestCorruptSealedSegment: damage in a segment that was complete before
// the next one began is an error naming the file and the offset.
func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	writeSteps(t, dir, 400, filestore.WithSegmentSize(4<<10), filestore.WithAutoCompact(false))
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 0x20
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = filestore.Open(dir)
	if !errors.Is(err, filestore.ErrCorrupt) || !strings.Contains(err.Error(), segs[0]) || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("Open: %v, want ErrCorrupt naming %s and an offset", err, segs[0])
	}
	t.Log(err)
	// The lock was released: once repaired, the store opens.
	b[100] ^= 0x20
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	if n := stepsIn(t, s); n != 400 {
		t.Fatalf("%d steps, want 400", n)
	}
}

func TestBadHeaderAndStrayFiles(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		data []byte
	}{
		"bad magic":       {"0000000000000001.seg", []byte("NOPE this is not a segment header.....")},
		"wrong number":    {"0000000000000002.seg", nil}, // filled in: segment 1's header
		"bad name":        {"zz.seg", []byte("x")},
		"number zero":     {"0000000000000000.seg", []byte("x")},
		"stray tmp is ok": {"0000000000000001.seg.tmp", []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeSteps(t, dir, 5, filestore.WithSegmentSize(4<<10))
			data := tc.data
			if data == nil {
				b, _ := os.ReadFile(filepath.Join(dir, "0000000000000001.seg"))
				data = b
				_ = os.Remove(filepath.Join(dir, "0000000000000001.seg"))
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := filestore.Open(dir)
			if strings.HasSuffix(name, "is ok") {
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close()
				if _, err := os.Stat(filepath.Join(dir, tc.file)); !os.IsNotExist(err) {
					t.Fatalf("%s not removed", tc.file)
				}
				return
			}
			if !errors.Is(err, filestore.ErrCorrupt) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// TestChecksummedStepThatDoesNotDecode: a frame whose checksum matches but
// whose step does not decode is no torn write (a crash cannot make the
// checksum match), even at the end of the last segment: it is damage.
func TestChecksummedStepThatDoesNotDecode(t *testing.T) {
	dir := t.TempDir()
	writeSteps(t, dir, 3)
	segs := segments(t, dir)
	bad := []byte{5, 0, 0} // claims 5 puts in 1 byte
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(bad)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Update(crc32.Checksum(frame[:4], castagnoli), castagnoli, bad))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	_, _ = f.Write(append(frame, bad...))
	_ = f.Close()
	_, err = filestore.Open(dir)
	var ce *filestore.CorruptError
	if !errors.As(err, &ce) || ce.Damage[0].Offset != fi.Size() || ce.Damage[0].Length != 11 || !strings.Contains(err.Error(), "does not decode") {
		t.Fatalf("Open: %v, want a *CorruptError for the 11-byte frame at %d", err, fi.Size())
	}
}
