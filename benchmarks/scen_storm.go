package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stormClients is how many clients the storm scenarios connect (scaled).
const stormClients = 300

// stormProbeEvery is the interval of the broadcast probe after the restart:
// the resolution of "resubscribed".
const stormProbeEvery = 50 * time.Millisecond

func stormMetrics(kind string) []metric {
	p := fmt.Sprintf("S. storm, %d clients, %s in its own process, SIGKILL + 2 s down + restart", stormClients, kind)
	return []metric{
		{row: p + ": peak CONNECTs per 100 ms (sliding window, at the broker)", unit: unitCount},
		{row: p + ": restart → last client connected (at the broker)", unit: unitSeconds},
		{row: p + ": restart → last client resubscribed (got a broadcast probe)", unit: unitSeconds},
		{row: p + ": failed connection attempts per client, mean", unit: unitCount},
		{row: p + ": failed connection attempts per client, max", unit: unitCount},
	}
}

// storm: N clients in this process, each subscribed to storm/all with QoS 1
// (through the adapter, so each library restores the subscription its own
// way), are connected to a broker in another process. The broker is killed
// with SIGKILL, stays down for 2 s and is started again on the same port,
// without any session. CONNECTs are counted at the broker: every "client
// connected" line of its log, timestamped when this process reads it from
// the pipe. After the restart a raw TCP client publishes a QoS 0 probe to
// storm/all every 50 ms; a client is back and resubscribed when its handler
// gets one. Failed attempts are counted by each library's own hook
// (ClientConfig.OnFailedAttempt).
func storm(ctx context.Context, e *env, c Contestant, kind string) ([]float64, error) {
	n := e.n(stormClients)
	b, err := startBrokerProc(ctx, kind, true)
	if err != nil {
		return nil, err
	}
	defer b.Close()

	var after atomic.Bool // set at the restart
	back := make([]atomic.Int64, n)
	failed := make([]atomic.Int64, n)
	var nback atomic.Int64
	all := make(chan struct{})
	clients := make([]Client, n)
	defer func() {
		var wg sync.WaitGroup
		for _, cl := range clients {
			if cl != nil {
				wg.Add(1)
				go func() { defer wg.Done(); closeBounded(cl) }()
			}
		}
		wg.Wait()
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				cl, err := c.Connect(ctx, ClientConfig{
					Addr: b.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive,
					OnFailedAttempt: func() {
						if after.Load() {
							failed[i].Add(1)
						}
					},
					Sub: &Subscription{Topic: "storm/all", QoS: 1, Handler: func([]byte) {
						if after.Load() && back[i].CompareAndSwap(0, time.Now().UnixNano()) {
							if nback.Add(1) == int64(n) {
								close(all)
							}
						}
					}},
				})
				if err != nil {
					select {
					case errs <- fmt.Errorf("connect %d: %w", i, err):
					default:
					}
					return
				}
				clients[i] = cl
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}

	b.Kill()
	if err := sleepCtx(ctx, outage); err != nil {
		return nil, err
	}
	after.Store(true)
	t0 := time.Now()
	if err := b.Restart(ctx); err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}

	// The probe: a raw client of its own, connected as soon as the broker
	// takes it (it competes with the storm, as any client would).
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		var p Client
		for p == nil && probeCtx.Err() == nil {
			cctx, cancel := context.WithTimeout(probeCtx, 2*time.Second)
			p, _ = rawContestant{}.Connect(cctx, ClientConfig{Addr: b.Addr(), ClientID: fmt.Sprintf("storm-probe-%d", e.seq.Add(1))})
			cancel()
		}
		if p == nil {
			return
		}
		defer p.Close()
		t := time.NewTicker(stormProbeEvery)
		defer t.Stop()
		for {
			_ = p.Publish(probeCtx, "storm/all", []byte("probe"), 0)
			select {
			case <-probeCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer pwg.Wait()

	select {
	case <-all:
	case <-ctx.Done():
		return nil, fmt.Errorf("%d of %d clients back and resubscribed %v after the restart: %w", nback.Load(), n, time.Since(t0).Round(time.Millisecond), ctx.Err())
	}
	stopProbe()
	var last int64
	for i := range back {
		last = max(last, back[i].Load())
	}
	var conns []time.Time
	for _, t := range b.Connects() {
		if t.After(t0) {
			conns = append(conns, t)
		}
	}
	// The probe's own CONNECT is one of them; the clients' are the rest.
	if len(conns) < n {
		return nil, fmt.Errorf("the broker logged %d connects after the restart, want at least %d", len(conns), n)
	}
	var sum, most float64
	for i := range failed {
		f := float64(failed[i].Load())
		sum += f
		most = max(most, f)
	}
	return []float64{
		float64(peakPer(conns, 100*time.Millisecond)),
		conns[len(conns)-1].Sub(t0).Seconds(),
		time.Unix(0, last).Sub(t0).Seconds(),
		sum / float64(n),
		most,
	}, nil
}

// peakPer returns the most timestamps in any window of length w.
func peakPer(ts []time.Time, w time.Duration) int {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
