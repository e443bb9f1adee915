package filestore_test

import (
	"fmt"
	"log"
	"os"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// A store survives its process: what a durable Apply stored is there when
// the directory is opened again.
func Example() {
	dir, err := os.MkdirTemp("", "filestore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := filestore.Open(dir, filestore.WithMaxRecords(10_000), filestore.WithMaxBytes(8<<20))
	if err != nil {
		log.Fatal(err)
	}
	// Two messages accepted, durably; then the first one acknowledged.
	if err := s.Apply([]mqttkeep.Record{{Key: 1, Value: []byte("first")}, {Key: 2, Value: []byte("second")}}, nil, true); err != nil {
		log.Fatal(err)
	}
	if err := s.Apply(nil, []uint64{1}, false); err != nil {
		log.Fatal(err)
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	s, err = filestore.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_ = s.Load(func(key uint64, value []byte) error {
		fmt.Printf("%d: %s\n", key, value)
		return nil
	})
	// Output:
	// 2: second
}
