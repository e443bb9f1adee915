package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentExt = ".seg"
	tmpExt     = ".tmp"
	lockName   = "LOCK"
)

// segment is one file of the log.
type segment struct {
	num  uint64
	path string
	f    *os.File
	size int64 // bytes in the file, header included (for the active segment: written + pending)
	live int64 // payload bytes of the records in it that are still current

	compacted bool  // written by a compaction
	liveAfter int64 // live when it was written or opened: nothing died since if live == liveAfter
	damaged   bool  // Open found damage in it (Salvage then rewrites it)
}

// segmentName is the file name of segment num: 16 hex digits.
func segmentName(num uint64) string {
	return fmt.Sprintf("%016x%s", num, segmentExt)
}

// listSegments returns the numbers of the segment files in dir, ascending,
// and the paths of the temporary files a crash left behind (compaction
// output not renamed, damaged bytes not yet saved), for recovery to
// remove.
func listSegments(dir string) (nums []uint64, tmps []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("filestore: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpExt):
			tmps = append(tmps, filepath.Join(dir, name))
		case strings.HasSuffix(name, segmentExt):
			hex := strings.TrimSuffix(name, segmentExt)
			n, err := strconv.ParseUint(hex, 16, 64)
			if err != nil || len(hex) != 16 || n == 0 {
				return nil, nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, filepath.Join(dir, name))
			}
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, tmps, nil
}

// createSegment creates segment num in dir with its header, synced, and
// the directory synced, so that the file survives a crash.
func createSegment(dir string, num uint64, flags byte) (*segment, error) {
	path := filepath.Join(dir, segmentName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := writeHeader(f, num, flags); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{num: num, path: path, f: f, size: headerSize}, nil
}

// writeHeader writes and syncs the header of segment num at the start of f.
func writeHeader(f *os.File, num uint64, flags byte) error {
	if _, err := f.WriteAt(appendHeader(nil, header{flags: flags, number: num}), 0); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := syncData(f); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}
