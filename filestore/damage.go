package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Damage is a range of a segment file that holds no whole step: bytes
// that are not what the store wrote there.
type Damage struct {
	// Path is the segment file.
	Path string
	// Offset and Length are where the range begins in the file and its
	// length in bytes: from the first byte that is not part of a whole
	// frame to the next whole frame (or the end of the file). A damaged
	// segment header is a range of its own: offset 0, length 20.
	Offset, Length int64
	// Reason says what was wrong at Offset, e.g. "frame checksum
	// mismatch".
	Reason string
	// SavedTo is set by [Salvage] only: the file next to the segment that
	// now holds a copy of the range's bytes.
	SavedTo string
}

// CorruptError is the error [Open] returns when a segment holds damage
// that a crash cannot leave: anything but a torn last write at the end of
// the last segment. It matches [ErrCorrupt] (errors.Is); use errors.As to
// read it. Open leaves the segment files as they were when it returns
// one: [Salvage] keeps every whole step and copies the damaged bytes
// aside.
type CorruptError struct {
	// Damage lists every damaged range, by segment and offset.
	Damage []Damage
	// StepsAfter counts the whole steps (Apply calls, with their
	// checksums matching) that follow the first damaged range, in its
	// segment and in later ones: what Open refuses to drop without an
	// error, and what Salvage keeps.
	StepsAfter int
}

// Error names the first damaged range's file, offset and length, and how
// many whole steps follow it.
func (e *CorruptError) Error() string {
	if len(e.Damage) == 0 {
		return ErrCorrupt.Error()
	}
	d := e.Damage[0]
	msg := fmt.Sprintf("%v %s at offset %d: %s (%d bytes)", ErrCorrupt, d.Path, d.Offset, d.Reason, d.Length)
	if len(e.Damage) > 1 {
		msg += fmt.Sprintf(" and %d more damaged ranges", len(e.Damage)-1)
	}
	return msg + fmt.Sprintf("; %d whole steps follow; filestore.Salvage keeps them and copies the damaged bytes aside", e.StepsAfter)
}

// Unwrap returns [ErrCorrupt].
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// SalvageReport is what [Salvage] skipped and kept.
type SalvageReport struct {
	// Damage lists every range skipped, by segment and offset, each with
	// the file its bytes were copied to (Damage.SavedTo). Empty if the
	// store held no damage.
	Damage []Damage
	// Steps counts the whole steps replayed, StepsAfterDamage those of
	// them that follow the first damaged range (what Open refused to
	// drop).
	Steps, StepsAfterDamage int
	// Records is the number of records in the store afterwards.
	Records int
	// TornBytes is what was cut off the end of the last segment, as in
	// [Stats].TornBytes.
	TornBytes int64
}

// damagedExt ends the name of a file that holds a copy of a damaged range.
const damagedExt = ".damaged"

// Salvage repairs the store in directory path after [Open] returned an
// error matching [ErrCorrupt], and reports what it did; open the store
// with Open afterwards. It reads the segments as Open does, keeps every
// whole step, before and after each damaged range, and skips the damaged
// ranges: the steps in them are lost, and a step that only follows them
// is applied as if they had not been written (a delete in a lost step
// does not happen, so a record it deleted can come back).
//
// Nothing is destroyed: each damaged range is first copied to a file next
// to its segment, named after the segment and the range's offset
// (0000000000000001.seg.4096.damaged; a second copy of the same range gets
// .2 before the extension), synced. Then Salvage rewrites every segment
// that held damage, with the live records, the way [Store.Compact] does
// (it needs room for them a second time), so that Open reads the store
// without an error again. The store never reads or removes the .damaged
// files. A crash during Salvage leaves the damaged segments or their
// rewrite in force, never a mix; run Salvage again.
//
// On a store without damage Salvage changes what Open would change (a
// torn tail is cut off) and returns a report with no Damage. It returns
// an error matching [ErrLocked] while a Store has the directory open,
// and an error matching ErrCorrupt for what it cannot repair: a file
// whose name is not a segment's, or a segment whose header is whole but
// of another segment or of an unknown format version.
//
// A damaged range is found by trying every offset after it for a whole
// frame (its length fits, its checksum matches, its step decodes), so a
// damaged length cannot hide the steps after it. The one thing this
// cannot tell apart from a step is a value that itself holds a whole
// frame of this format, inside a damaged step: Salvage would apply it.
func Salvage(path string) (SalvageReport, error) {
	o := defaultOptions()
	o.autoCompact = false
	o.salvage = true
	s, err := open(path, o)
	if err != nil {
		return SalvageReport{}, err
	}
	var rep SalvageReport
	if s.salvaged != nil {
		rep = *s.salvaged
		err = s.rewriteDamaged()
	}
	st := s.Stats()
	rep.Records, rep.TornBytes = st.Records, st.TornBytes
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return rep, err
}

// rewriteDamaged rewrites the segments Open found damage in: it seals the
// active segment if it is one of them, then compacts every sealed
// segment into one.
func (s *Store) rewriteDamaged() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.Lock()
	if s.active.damaged {
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	return s.compact()
}

// saveDamage copies the bytes of d into a new file next to its segment,
// synced (the directory is not), and returns its path.
func saveDamage(d Damage) (string, error) {
	src, err := os.Open(d.Path)
	if err != nil {
		return "", fmt.Errorf("filestore: %w", err)
	}
	defer src.Close()
	base := d.Path + "." + strconv.FormatInt(d.Offset, 10)
	name := base + damagedExt
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return "", fmt.Errorf("filestore: %w", err)
		}
		if i > 1000 {
			return "", fmt.Errorf("filestore: %s: too many copies of damaged bytes already", base+damagedExt)
		}
		name = base + "." + strconv.Itoa(i) + damagedExt
	}
	tmp := name + tmpExt // removed by the next Open if this one fails
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("filestore: %w", err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("filestore: save damaged bytes of %s at %d: %w", d.Path, d.Offset, err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(src, d.Offset, d.Length)); err != nil {
		return fail(err)
	}
	if err := syncData(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fail(err)
	}
	return filepath.Clean(name), nil
}
