package filestore_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// When Open finds damage with whole steps after it, it refuses to drop
// them: Salvage keeps them, copies the damaged bytes aside and reports.
func ExampleSalvage() {
	dir, err := os.MkdirTemp("", "filestore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := filestore.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	for i, v := range []string{"alpha", "bravo", "delta"} {
		if err := s.Apply([]mqttkeep.Record{{Key: uint64(i + 1), Value: []byte(v)}}, nil, true); err != nil {
			log.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
	// A byte of the second step goes bad on the disk.
	seg := filepath.Join(dir, "0000000000000001.seg")
	b, _ := os.ReadFile(seg)
	b[len(b)-20] ^= 1
	_ = os.WriteFile(seg, b, 0o600)

	s, err = filestore.Open(dir)
	var ce *filestore.CorruptError
	if errors.As(err, &ce) {
		fmt.Printf("damaged: offset %d, %d bytes; whole steps after it: %d\n", ce.Damage[0].Offset, ce.Damage[0].Length, ce.StepsAfter)
		rep, serr := filestore.Salvage(dir)
		if serr != nil {
			log.Fatal(serr)
		}
		fmt.Printf("salvaged: %d steps kept, %d records; the damaged bytes are in %s\n", rep.Steps, rep.Records, filepath.Base(rep.Damage[0].SavedTo))
		s, err = filestore.Open(dir)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_ = s.Load(func(key uint64, value []byte) error {
		fmt.Printf("%d: %s\n", key, value)
		return nil
	})
	// Output:
	// damaged: offset 37, 17 bytes; whole steps after it: 1
	// salvaged: 2 steps kept, 2 records; the damaged bytes are in 0000000000000001.seg.37.damaged
	// 1: alpha
	// 3: delta
}
