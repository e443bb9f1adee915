package filestore_test

import (
	"sync/atomic"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// BenchmarkApplyDurable: one 64-byte record per durable Apply, from one
// goroutine and from 64 (benchmarks/storebench compares with the peers).
func BenchmarkApplyDurable(b *testing.B) {
	for _, par := range []int{1, 64} {
		b.Run(map[int]string{1: "1", 64: "64"}[par], func(b *testing.B) {
			s, err := filestore.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetParallelism(max(1, par/2)) // GOMAXPROCS is 2 here
			v := make([]byte, 64)
			var key atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := key.Add(1)
					if err := s.Apply([]mqttkeep.Record{{Key: k, Value: v}}, nil, true); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkOpenLoad: Open and Load of a store of 100,000 records of 64 bytes.
func BenchmarkOpenLoad(b *testing.B) {
	dir := b.TempDir()
	s, err := filestore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	v := make([]byte, 64)
	puts := make([]mqttkeep.Record, 1000)
	for i := range uint64(100) {
		for j := range puts {
			puts[j] = mqttkeep.Record{Key: i*1000 + uint64(j), Value: v}
		}
		if err := s.Apply(puts, nil, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := filestore.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		_ = s.Load(func(uint64, []byte) error { n++; return nil })
		_ = s.Close()
		if n != 100_000 {
			b.Fatalf("%d records", n)
		}
	}
}
