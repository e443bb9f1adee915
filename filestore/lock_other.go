//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package filestore

import "os"

// lockFile does nothing on systems without flock: there, keeping one
// process per store is up to the caller.
func lockFile(*os.File) error { return nil }
