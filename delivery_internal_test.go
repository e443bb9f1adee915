package mqttkeep

import "testing"

// A lane that lags for a long time under steady load keeps memory
// proportional to what waits in it, not to what it has handled: the
// inbox that kept its consumed prefix until it emptied grew ~25 B per
// handled message (18 → 115 MiB in 50 s of QoS 0 overload).
func TestLaneMemoryFollowsWhatWaits(t *testing.T) {
	for _, waiting := range []int{1, 100, 5000} {
		ln := &lane{}
		for range waiting {
			ln.q = append(ln.q, &delivery{})
		}
		maxCap := 0
		// 200,000 messages in and out with `waiting` always queued: the
		// handler never catches up, so the lane never empties.
		for range 200_000 {
			ln.q = append(ln.q, &delivery{})
			if ln.pop() == nil {
				t.Fatal("pop returned nil with messages waiting")
			}
			maxCap = max(maxCap, cap(ln.q))
		}
		if got := ln.waiting(); got != waiting {
			t.Fatalf("waiting = %d, want %d", got, waiting)
		}
		// compact moves the rest to the front once the consumed prefix is
		// over half of the slice, so it never holds more than about twice
		// what waits (plus append's growth step and the 32-item floor).
		if limit := 4*waiting + 128; maxCap > limit {
			t.Errorf("%d waiting: the lane's slice grew to %d entries, want at most %d", waiting, maxCap, limit)
		}
	}
}

// An emptied lane lets a large buffer go.
func TestEmptiedLaneReleasesItsBuffer(t *testing.T) {
	ln := &lane{}
	for range 10_000 {
		ln.q = append(ln.q, &delivery{})
	}
	for ln.waiting() > 0 {
		ln.pop()
	}
	if cap(ln.q) != 0 {
		t.Errorf("an empty lane keeps a buffer of %d entries", cap(ln.q))
	}
}
