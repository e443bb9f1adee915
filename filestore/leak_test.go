package filestore_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // the child of TestCrash: never returns
	}
	goleak.VerifyTestMain(m)
}
