package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
)

// idleFootprint connects 500 clients to a broker in a child process (so
// that only client memory and goroutines are in this process) and
// measures live heap after GC and goroutines, per client.
func idleFootprint(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	n := e.n(idleClients)
	addr, stop, err := startChildBroker(ctx, e.exe)
	if err != nil {
		return nil, err
	}
	defer stop()
	var m0, m1 runtime.MemStats
	gc()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	clients := make([]Client, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() { defer wg.Done(); closeBounded(cl) }()
		}
		wg.Wait()
	}()
	for i := range n {
		cl, err := c.Connect(ctx, ClientConfig{Addr: addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive})
		if err != nil {
			return nil, fmt.Errorf("connect %d: %w", i, err)
		}
		clients = append(clients, cl)
	}
	// Idle long enough for every client to have pinged at least once.
	if err := sleepCtx(ctx, e.keepAlive); err != nil {
		return nil, err
	}
	gc()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	if e.heapProfile != "" {
		if err := writeHeapProfile(e.heapProfile + "-" + strings.ReplaceAll(c.Name(), " ", "_")); err != nil {
			return nil, err
		}
	}
	heap := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(n)
	gor := float64(g1-g0) / float64(n)
	return []float64{heap, gor}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}
