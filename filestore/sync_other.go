//go:build !linux

package filestore

import "os"

// syncData flushes f to stable storage (fsync(2) through [os.File.Sync];
// on macOS that is F_FULLFSYNC).
func syncData(f *os.File) error { return f.Sync() }
