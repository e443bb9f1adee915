// Package filestore keeps a [mqttkeep.Store] in files, so that what a
// client accepted survives the process and the machine:
//
//	s, err := filestore.Open("/var/lib/sensor/mqtt")
//	if err != nil { … }
//	defer s.Close()
//	// give s to the client as its mqttkeep.Store
//
// # What survives what
//
// A step (one [Store.Apply]) applied with durable set has been written and
// synced (fdatasync on Linux, fsync elsewhere) before Apply returns: it
// survives a kill of the process and a crash or power loss of the machine,
// as far as the disk honours its flush. A step applied without durable is
// written to the file within about 256 KiB of later steps, or by the next
// durable step or Close: until then a kill of the process loses it, and
// until the next sync a power loss may. Either way what is lost is a
// suffix of the steps, never a step with later ones kept, and never part
// of a step.
//
// The crash test (crash_test.go) kills a child process with SIGKILL at
// random moments and checks that every durable step that returned is
// there, in order and whole. It cannot cut the power; that half of the
// claim rests on fsync and on the order of writes, syncs and renames
// described below.
//
// # On disk
//
// Open takes a directory. It holds a file LOCK (flock) and segment files
// named by a 16-digit hexadecimal number, 0000000000000001.seg onward
// (and, after a [Salvage], the .damaged copies of what it skipped, which
// the store never reads or removes). A
// segment starts with a 20-byte header (magic "MQKL", version, flags, its
// number, CRC-32C) followed by frames, one per step: the payload length
// and a CRC-32C of length and payload, then the payload (uvarint counts of
// puts and deletes, each put a uvarint key, a uvarint length and the
// value, each delete a uvarint key). Records live where the log put them;
// the store keeps an index of every live key in memory (about 80 bytes a
// record) and reads values from the files for Get and Load.
//
// New steps go to the last segment. When it would grow past
// [WithSegmentSize] the store syncs it, creates the next one and syncs the
// directory; only the last segment is ever written to.
//
// # Recovery
//
// Open replays every segment. A frame is whole when its length fits in
// the file, its step decodes and its checksum matches. Where a frame is
// not whole, Open looks for the next whole frame at every later offset,
// so that a damaged length cannot hide the frames after it, and reads on
// from there. What it found is one of two things:
//
//   - A torn tail: bytes at the end of the last segment with no whole
//     frame after them. A crash during a write leaves that, and it holds
//     no step whose durable Apply returned, so Open cuts the file there
//     without an error and counts the bytes in [Stats].TornBytes. (A
//     damaged byte in the last step itself cannot be told apart from a
//     torn write: that step is cut the same way.)
//   - Damage: anything else. A frame that is not whole with a whole one
//     after it, in any segment; any bad byte in an earlier segment (it was
//     complete and synced before the next one began) or in a segment
//     header. Open returns a [*CorruptError], matching [ErrCorrupt], that
//     lists each damaged range (file, offset, length, what is wrong) and
//     counts the whole steps after the first one, and it leaves the
//     segment files as they were.
//     Nothing is dropped without that error. [Salvage] then keeps every
//     whole step, copies each damaged range to a file beside its segment
//     (0000000000000001.seg.4096.damaged) and rewrites the damaged
//     segments, after which Open reads the store without an error; the
//     steps inside the damaged ranges are lost.
//
// After a power loss (not a kill), a file system may keep later pages of
// a write that was not yet synced and lose earlier ones; Open reports the
// hole as damage, though the steps after it had not become durable.
// Lengths read from a file are checked against the file's size before
// anything is allocated for them.
//
// # Compaction
//
// [Store.Compact] (run in the background when at least half of the older
// segments' bytes are dead, see [WithAutoCompact]) starts a new segment,
// writes the live records of all older segments into a temporary file in
// key order (in frames of about 4 KiB of values, so that a damaged byte
// costs no more records than that), syncs it, renames it over the newest of the older segments
// with a "compacted" flag in its header, syncs the directory and removes
// the rest. A compacted segment stands for everything numbered below it,
// so a crash before the rename leaves the old segments in force and one
// after it the new one; Open finishes the removal. Steps go on during a
// compaction; it needs room for the live records a second time.
//
// # Limits
//
// [WithMaxRecords] and [WithMaxBytes] bound the live records and the sum
// of their values' lengths; a step that would pass either returns an
// error matching [mqttkeep.ErrQueueFull], naming the limit, and changes
// nothing. Deletes always fit. One step is at most 512 MiB encoded.
//
// # One process
//
// A directory may be open in one Store at a time: Open takes an exclusive
// flock on its LOCK file (on Linux, macOS and the BSDs; elsewhere that is
// the caller's job) and returns an error matching [ErrLocked] if another
// Store, in this process or another, holds it. The kernel releases the
// lock when the process dies. Network file systems may not honour flock or fsync; use a local
// disk. The store is built and tested on Linux; on Windows, where an open
// file cannot be replaced, compaction fails (see [Stats].CompactionErr).
package filestore
