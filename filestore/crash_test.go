package filestore_test

const crashChildEnv = "FILESTORE_CRASH_CHILD"

func crashChild() {}
