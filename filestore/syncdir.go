//go:build !windows

package filestore

import (
	"fmt"
	"os"
)

// syncDir fsyncs the directory dir, which makes file creations, renames
// and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}
