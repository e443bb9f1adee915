package filestore_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// checkOpen opens dir, which holds whatever the fuzzer made: Open must
// fail with ErrCorrupt or recover a store that loads, takes a new step
// and reopens to the same contents plus that step. Where Open reports
// damage (a *CorruptError), Salvage must repair it so that the same holds.
func checkOpen(t *testing.T, dir string) {
	s, err := filestore.Open(dir)
	var ce *filestore.CorruptError
	if errors.As(err, &ce) {
		rep, serr := filestore.Salvage(dir)
		if serr != nil {
			t.Fatalf("Open: %v; Salvage: %v", err, serr)
		}
		if len(rep.Damage) != len(ce.Damage) || rep.StepsAfterDamage != ce.StepsAfter {
			t.Fatalf("Open: %+v; Salvage: %+v", ce, rep)
		}
		s, err = filestore.Open(dir)
		if err != nil {
			t.Fatalf("Open after Salvage: %v", err)
		}
		if n := s.Stats().Records; n != rep.Records {
			t.Fatalf("Open after Salvage: %d records, Salvage said %d", n, rep.Records)
		}
	}
	if err != nil {
		if !errors.Is(err, filestore.ErrCorrupt) {
			t.Fatalf("Open: %v, want nil or ErrCorrupt", err)
		}
		return
	}
	before := contents(t, s)
	if err := s.Apply([]mqttkeep.Record{{Key: 1 << 62, Value: []byte("new")}}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = filestore.Open(dir)
	if err != nil {
		t.Fatalf("reopen after recovery: %v", err)
	}
	defer s.Close()
	after := contents(t, s)
	before[1<<62] = []byte("new")
	if err := equal(before, after); err != nil {
		t.Fatalf("reopen after recovery: %v", err)
	}
}

// sampleSegment is a real segment: a few steps, written by the store.
func sampleSegment(f *testing.F) []byte {
	dir := f.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	_ = s.Apply([]mqttkeep.Record{{Key: 1, Value: []byte("one")}, {Key: 300, Value: []byte("three hundred")}}, nil, true)
	_ = s.Apply([]mqttkeep.Record{{Key: 2, Value: nil}}, []uint64{1}, false)
	_ = s.Apply(nil, []uint64{300, 7}, false)
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "0000000000000001.seg"))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzOpen: the bytes are segment 1. With sealed set, an empty segment 2
// follows, so that segment 1 is read as a complete segment (damage is an
// error) rather than as the last one (a damaged end is cut off).
func FuzzOpen(f *testing.F) {
	seg := sampleSegment(f)
	f.Add(seg, false)
	f.Add(seg, true)
	f.Add(seg[:len(seg)-3], false)
	f.Add(seg[:20], true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		dir := fuzzDir(t)
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.seg"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if sealed {
			if err := os.WriteFile(filepath.Join(dir, "0000000000000002.seg"), header(2, 0), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		checkOpen(t, dir)
	})
}

// FuzzStep: the bytes are the payload of one frame with a valid checksum,
// after a valid header, so the fuzzer reaches the step decoder.
func FuzzStep(f *testing.F) {
	seg := sampleSegment(f)
	for off := 20; off+8 <= len(seg); {
		n := int(binary.LittleEndian.Uint32(seg[off:]))
		f.Add(seg[off+8 : off+8+n])
		off += 8 + n
	}
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 || len(payload) > 1<<20 {
			return
		}
		dir := fuzzDir(t)
		b := header(1, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
		crc := crc32.Update(crc32.Checksum(b[20:24], castagnoli), castagnoli, payload)
		b = binary.LittleEndian.AppendUint32(b, crc)
		b = append(b, payload...)
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.seg"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		checkOpen(t, dir)
	})
}

// fuzzDir is a temporary directory in memory (/dev/shm) where there is
// one: fsync costs nothing there, so the fuzzer runs at the speed of the
// code instead of the disk's.
func fuzzDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "filestore-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a valid segment header (see format.go).
func header(num uint64, flags byte) []byte {
	b := append([]byte("MQKL"), 1, flags, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, num)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
