package filestore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// frame is one frame of a segment as the store wrote it, decoded here
// from the documented format (not by the package's code).
type frame struct {
	file     int // index in layout.files
	off, len int
	puts     []mqttkeep.Record
	dels     []uint64
}

// layout is a store directory written by the store and closed: its
// segment files, their bytes, and every frame in them in log order.
type layout struct {
	files  []string // base names, ascending
	data   [][]byte
	frames []frame
}

// readLayout reads the segments of dir (a closed store) and decodes them.
func readLayout(t testing.TB, dir string) layout {
	t.Helper()
	var l layout
	for i, path := range segments(t, dir) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		l.files = append(l.files, filepath.Base(path))
		l.data = append(l.data, b)
		for off := 20; off < len(b); {
			n := int(binary.LittleEndian.Uint32(b[off:]))
			f := frame{file: i, off: off, len: 8 + n}
			p := b[off+8 : off+8+n]
			next := func() uint64 {
				v, k := binary.Uvarint(p)
				p = p[k:]
				return v
			}
			nputs, ndels := next(), next()
			for range nputs {
				key, vlen := next(), next()
				f.puts = append(f.puts, mqttkeep.Record{Key: key, Value: p[:vlen]})
				p = p[vlen:]
			}
			for range ndels {
				f.dels = append(f.dels, next())
			}
			l.frames = append(l.frames, f)
			off += f.len
		}
	}
	return l
}

// want is what replaying every frame but the one numbered skip (-1: none)
// leaves.
func (l layout) want(skip int) map[uint64][]byte {
	m := map[uint64][]byte{}
	for i, f := range l.frames {
		if i == skip {
			continue
		}
		for _, r := range f.puts {
			m[r.Key] = r.Value
		}
		for _, k := range f.dels {
			delete(m, k)
		}
	}
	return m
}

// frameAt returns the number of the frame holding byte pos of file, -1
// for the segment header.
func (l layout) frameAt(file, pos int) int {
	for i, f := range l.frames {
		if f.file == file && f.off <= pos && pos < f.off+f.len {
			return i
		}
	}
	return -1
}

// lastIn returns the number of the last frame in file, -1 if none.
func (l layout) lastIn(file int) int {
	last := -1
	for i, f := range l.frames {
		if f.file == file {
			last = i
		}
	}
	return last
}

// checkFlip copies l into a fresh directory with byte pos of file XORed
// with x (not 0) and checks what Open and Salvage make of it:
//
//   - in the last frame of the last segment, the flip is a torn tail:
//     Open cuts that frame, counts it in TornBytes and keeps every other
//     step;
//   - anywhere else (any header, any other frame, any byte of a sealed or
//     compacted segment) Open fails with a *CorruptError matching
//     ErrCorrupt that names the file, the damaged frame's offset and
//     length, and the number of whole steps after it, and changes no file;
//     Salvage then keeps every step but the damaged one, with its content,
//     copies the damaged bytes aside, and Open reads the result without an
//     error.
func checkFlip(t *testing.T, l layout, file, pos int, x byte) {
	t.Helper()
	dir := fuzzDir(t)
	for i, name := range l.files {
		b := l.data[i]
		if i == file {
			b = bytes.Clone(b)
			b[pos] ^= x
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, l.files[file])
	flipped, _ := os.ReadFile(path)
	j := l.frameAt(file, pos)
	where := fmt.Sprintf("flip ^%#02x at %s:%d (frame %d)", x, l.files[file], pos, j)
	want := l.want(j)

	s, err := filestore.Open(dir)
	if file == len(l.files)-1 && j >= 0 && j == l.lastIn(file) {
		if err != nil {
			t.Fatalf("%s, the last frame of the active segment: Open: %v, want a torn tail cut", where, err)
		}
		got, st := contents(t, s), s.Stats()
		_ = s.Close()
		if err := equal(want, got); err != nil {
			t.Fatalf("%s: a torn tail: %v", where, err)
		}
		if st.TornBytes != int64(l.frames[j].len) {
			t.Fatalf("%s: TornBytes %d, want %d", where, st.TornBytes, l.frames[j].len)
		}
		return
	}
	var ce *filestore.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, filestore.ErrCorrupt) {
		if err == nil {
			_ = s.Close()
		}
		t.Fatalf("%s: Open: %v, want a *CorruptError matching ErrCorrupt", where, err)
	}
	off, n, after := 0, 20, 0
	if j >= 0 {
		off, n = l.frames[j].off, l.frames[j].len
		after = len(l.frames) - j - 1
	} else {
		for i, f := range l.frames {
			if f.file >= file {
				after = len(l.frames) - i
				break
			}
		}
	}
	if len(ce.Damage) != 1 {
		t.Fatalf("%s: %d damaged ranges %+v, want 1", where, len(ce.Damage), ce.Damage)
	}
	if d := ce.Damage[0]; d.Path != path || d.Offset != int64(off) || d.Length != int64(n) || ce.StepsAfter != after {
		t.Fatalf("%s: Open: %+v, %d steps after; want %s, offset %d, length %d, %d steps after", where, d, ce.StepsAfter, path, off, n, after)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("offset %d", off)) || !strings.Contains(msg, fmt.Sprintf("%d whole steps follow", after)) {
		t.Fatalf("%s: the message does not name file, offset and steps after: %s", where, msg)
	}
	for i, name := range l.files {
		want := l.data[i]
		if i == file {
			want = flipped
		}
		if now, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(now, want) {
			t.Fatalf("%s: Open failed but changed %s", where, name)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(l.files)+1 { // and LOCK
		t.Fatalf("%s: Open failed but left %d files, want the %d segments and LOCK", where, len(ents), len(l.files))
	}

	rep, err := filestore.Salvage(dir)
	if err != nil {
		t.Fatalf("%s: Salvage: %v", where, err)
	}
	if len(rep.Damage) != 1 || rep.Damage[0].Path != path || rep.Damage[0].Offset != int64(off) || rep.Damage[0].Length != int64(n) {
		t.Fatalf("%s: Salvage reported %+v, want %s, offset %d, length %d", where, rep.Damage, path, off, n)
	}
	saved, err := os.ReadFile(rep.Damage[0].SavedTo)
	if err != nil || !bytes.Equal(saved, flipped[off:off+n]) {
		t.Fatalf("%s: the damaged bytes aside in %q: %q, %v; want %q", where, rep.Damage[0].SavedTo, saved, err, flipped[off:off+n])
	}
	steps := len(l.frames)
	if j >= 0 {
		steps--
	}
	if rep.Steps != steps || rep.StepsAfterDamage != after || rep.Records != len(want) {
		t.Fatalf("%s: Salvage: %d steps, %d after the damage, %d records; want %d, %d, %d", where, rep.Steps, rep.StepsAfterDamage, rep.Records, steps, after, len(want))
	}
	s, err = filestore.Open(dir)
	if err != nil {
		t.Fatalf("%s: Open after Salvage: %v", where, err)
	}
	got := contents(t, s)
	_ = s.Close()
	if err := equal(want, got); err != nil {
		t.Fatalf("%s: after Salvage: %v", where, err)
	}
}

// build writes a store into dir: steps in segment 1; with sealed, an
// empty segment 2 begins before the later steps (so segment 1 is
// complete); with compacted, a compaction runs before them instead.
func build(t testing.TB, dir string, steps, later [][2][]mqttkeep.Record, sealed, compacted bool) {
	t.Helper()
	apply := func(steps [][2][]mqttkeep.Record) {
		s, err := filestore.Open(dir, filestore.WithAutoCompact(false))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range steps {
			var dels []uint64
			for _, r := range st[1] {
				dels = append(dels, r.Key)
			}
			if err := s.Apply(st[0], dels, true); err != nil {
				t.Fatal(err)
			}
		}
		if compacted {
			compacted = false
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	apply(steps)
	if sealed {
		if err := os.WriteFile(filepath.Join(dir, "0000000000000002.seg"), header(2, 0), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(later) > 0 {
		apply(later)
	}
}

// put and del make a step for build.
func put(kv ...any) [2][]mqttkeep.Record {
	var st [2][]mqttkeep.Record
	for i := 0; i < len(kv); i += 2 {
		st[0] = append(st[0], mqttkeep.Record{Key: uint64(kv[i].(int)), Value: []byte(kv[i+1].(string))})
	}
	return st
}

func del(st [2][]mqttkeep.Record, keys ...int) [2][]mqttkeep.Record {
	for _, k := range keys {
		st[1] = append(st[1], mqttkeep.Record{Key: uint64(k)})
	}
	return st
}

// TestFlipInRecord5OfActiveSegment is the case from the issue: 20 durable
// steps, then one byte flipped inside the fifth. Steps 6 to 20 are whole:
// Open must not drop them without an error (it did: no error, 4 records,
// TornBytes 1627), and Salvage keeps them.
func TestFlipInRecord5OfActiveSegment(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := range uint64(20) {
		v := fmt.Appendf(nil, "record %d %s", i+1, strings.Repeat("x", 80))
		if err := s.Apply([]mqttkeep.Record{{Key: i + 1, Value: v}}, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l := readLayout(t, dir)
	if len(l.files) != 1 || len(l.frames) != 20 {
		t.Fatalf("%d files, %d frames; want 1, 20", len(l.files), len(l.frames))
	}
	seg := filepath.Join(dir, l.files[0])
	b := bytes.Clone(l.data[0])
	r5 := l.frames[4]
	b[r5.off+8+20] ^= 0x04 // in the value of record 5
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := filestore.Open(dir)
	if err == nil {
		got, st := contents(t, s), s.Stats()
		_ = s.Close()
		t.Fatalf("Open: no error, %d records, TornBytes %d; records 6 to 20 are whole", len(got), st.TornBytes)
	}
	var ce *filestore.CorruptError
	if !errors.Is(err, filestore.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("Open: %v, want a *CorruptError matching ErrCorrupt", err)
	}
	t.Log(err)
	if d := ce.Damage[0]; len(ce.Damage) != 1 || d.Path != seg || d.Offset != int64(r5.off) || d.Length != int64(r5.len) || ce.StepsAfter != 15 {
		t.Fatalf("Open: %+v, %d steps after; want %s at %d, %d bytes, 15 steps after", ce.Damage, ce.StepsAfter, seg, r5.off, r5.len)
	}
	if now, _ := os.ReadFile(seg); !bytes.Equal(now, b) {
		t.Fatal("Open failed but changed the segment")
	}

	rep, err := filestore.Salvage(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Salvage: %+v", rep)
	if len(rep.Damage) != 1 || rep.Steps != 19 || rep.StepsAfterDamage != 15 || rep.Records != 19 {
		t.Fatalf("Salvage: %+v; want one damaged range, 19 steps, 15 after it, 19 records", rep)
	}
	if saved, err := os.ReadFile(rep.Damage[0].SavedTo); err != nil || !bytes.Equal(saved, b[r5.off:r5.off+r5.len]) {
		t.Fatalf("the bytes of record 5 aside: %q, %v", saved, err)
	}
	s = open(t, dir)
	got := contents(t, s)
	for i := uint64(1); i <= 20; i++ {
		v, ok := got[i]
		switch {
		case i == 5 && ok:
			t.Fatalf("record 5, damaged, is there: %q", v)
		case i != 5 && string(v) != fmt.Sprintf("record %d %s", i, strings.Repeat("x", 80)):
			t.Fatalf("record %d: %q", i, v)
		}
	}
	// The store goes on, and opens again without an error.
	if err := s.Apply([]mqttkeep.Record{{Key: 21, Value: []byte("after")}}, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	if n := len(contents(t, s)); n != 20 {
		t.Fatalf("%d records after reopening, want 20", n)
	}
}

// flipLayouts are the stores TestEveryByteFlipped damages: one active
// segment of frames of one size; a sealed segment before the active one;
// a compacted one before it, and before an empty one. The steps put and
// delete, some several records at once, and a value is empty.
func flipLayouts() map[string]func(t testing.TB, dir string) {
	first := [][2][]mqttkeep.Record{
		put(1, "one"),
		put(2, "two", 3, "three hundred and three"),
		del(put(4, ""), 1),
		put(5, strings.Repeat("v", 40)),
		del(put(6, "six"), 2, 99),
		put(3, "three again"),
	}
	later := [][2][]mqttkeep.Record{
		put(7, "seven"),
		del(put(8, "eight", 9, "nine"), 5),
		put(10, "ten"),
	}
	// Frames of 32 bytes each: a length with one bit flipped can point
	// exactly at a later frame, past whole ones.
	var uniform [][2][]mqttkeep.Record
	for i := range 12 {
		uniform = append(uniform, put(i, fmt.Sprintf("uniform value %06d", i)))
	}
	return map[string]func(t testing.TB, dir string){
		"uniform":                  func(t testing.TB, dir string) { build(t, dir, uniform, nil, false, false) },
		"sealed":                   func(t testing.TB, dir string) { build(t, dir, first, later, true, false) },
		"compacted":                func(t testing.TB, dir string) { build(t, dir, first, later, false, true) },
		"compacted, nothing after": func(t testing.TB, dir string) { build(t, dir, first, nil, false, true) },
	}
}

// TestEveryByteFlipped flips every byte of every segment of each layout,
// one at a time, and checks each with checkFlip: a byte of a frame's
// length with each single bit and with all bits (one bit can make it
// point at a later frame), a byte of a frame's checksum or of a segment
// header with the lowest bit and with all bits, a byte of a payload with
// all bits.
func TestEveryByteFlipped(t *testing.T) {
	bits := []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}
	for name, mk := range flipLayouts() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mk(t, dir)
			l := readLayout(t, dir)
			if want := map[string]int{"uniform": 1, "sealed": 2, "compacted": 2, "compacted, nothing after": 2}[name]; len(l.files) != want {
				t.Fatalf("%d segments, want %d", len(l.files), want)
			}
			n := 0
			for file := range l.files {
				for pos := range l.data[file] {
					xs := bits[len(bits)-1:]
					switch j := l.frameAt(file, pos); {
					case j >= 0 && pos < l.frames[j].off+4:
						xs = bits
					case j < 0 || pos < l.frames[j].off+8:
						xs = []byte{0x01, 0xff}
					}
					for _, x := range xs {
						checkFlip(t, l, file, pos, x)
						n++
					}
				}
			}
			t.Logf("%d flips in %d segments, %d frames", n, len(l.files), len(l.frames))
		})
	}
}

// FuzzFlip: a store built from a seed (random steps in one to three
// segments, sealed or compacted) with one byte flipped anywhere in one of
// its segments; checkFlip holds for all of it.
func FuzzFlip(f *testing.F) {
	f.Add(uint64(1), uint8(0), uint32(30), byte(0x01))
	f.Add(uint64(2), uint8(1), uint32(20), byte(0x80))
	f.Add(uint64(3), uint8(0), uint32(3), byte(0xff))
	f.Add(uint64(4), uint8(1), uint32(100), byte(0x10))
	f.Fuzz(func(t *testing.T, seed uint64, file uint8, pos uint32, x byte) {
		if x == 0 {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 9))
		steps := func(n int) [][2][]mqttkeep.Record {
			var out [][2][]mqttkeep.Record
			for range n {
				var st [2][]mqttkeep.Record
				for range rng.IntN(4) {
					v := make([]byte, []int{0, 1, 20, 300, 5000}[rng.IntN(5)])
					for i := range v {
						v[i] = byte(rng.Uint32())
					}
					st[0] = append(st[0], mqttkeep.Record{Key: rng.Uint64N(16), Value: v})
				}
				for range rng.IntN(3) {
					st[1] = append(st[1], mqttkeep.Record{Key: rng.Uint64N(16)})
				}
				if len(st[0])+len(st[1]) == 0 {
					st[0] = append(st[0], mqttkeep.Record{Key: rng.Uint64N(16)})
				}
				out = append(out, st)
			}
			return out
		}
		dir := fuzzDir(t)
		mode := rng.IntN(3)
		build(t, dir, steps(1+rng.IntN(8)), steps(rng.IntN(5)), mode == 1, mode == 2)
		l := readLayout(t, dir)
		fi := int(file) % len(l.files)
		checkFlip(t, l, fi, int(pos)%len(l.data[fi]), x)
	})
}

// TestFlipInCompactionOutput: a compacted segment holds its records in
// frames of about 4 KiB of values, so a flipped byte loses the records of
// one frame and Salvage keeps the others.
func TestFlipInCompactionOutput(t *testing.T) {
	dir := t.TempDir()
	var steps [][2][]mqttkeep.Record
	for i := range 60 {
		steps = append(steps, put(i, fmt.Sprintf("%03d %s", i, strings.Repeat("c", 300))))
	}
	build(t, dir, steps, nil, false, true)
	l := readLayout(t, dir)
	var frames []int
	for j, f := range l.frames {
		if f.file == 0 {
			frames = append(frames, j)
			if n := len(f.puts); n < 2 || n > 14 {
				t.Fatalf("compacted frame %d holds %d records of 304 bytes, want about 4 KiB of them", j, n)
			}
		}
	}
	if len(frames) < 4 {
		t.Fatalf("the compacted segment has %d frames, want 60 records of 304 bytes in frames of about 4 KiB", len(frames))
	}
	for _, j := range frames {
		f := l.frames[j]
		for pos := f.off; pos < f.off+8; pos++ {
			checkFlip(t, l, 0, pos, 0x01)
			checkFlip(t, l, 0, pos, 0x10)
		}
		checkFlip(t, l, 0, f.off+f.len/2, 0xff)
	}
}
