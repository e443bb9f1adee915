package filestore

// syncDir does nothing on Windows, where a directory cannot be synced:
// NTFS journals its metadata.
func syncDir(string) error { return nil }
