package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// startPublisher starts pub's publishing goroutine.
func (d *demo) startPublisher() {
	var ctx context.Context
	ctx, d.pubCancel = context.WithCancel(context.Background())
	d.pubStop, d.pubDone = make(chan struct{}), make(chan struct{})
	go d.publish(ctx)
}

// publish is the publisher: one sequence number per interval, each
// published until the broker acknowledged it. A failed attempt (not
// connected, timed out, session lost) is retried with the SAME number.
func (d *demo) publish(ctx context.Context) {
	defer close(d.pubDone)
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	del := &deliverer{client: d.pub, attemptTimeout: d.publishTimeout}
	for seq := uint64(1); ; seq++ {
		select {
		case <-d.pubStop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		payload := []byte(strconv.FormatUint(seq, 10))
		failed := 0
		err := del.deliver(ctx, func(actx context.Context) error {
			if err := d.waitGate(actx); err != nil {
				return err
			}
			d.pubMu.Lock()
			defer d.pubMu.Unlock()
			if !d.isGateOpen() {
				return errGateClosed
			}
			if err := d.pub.Publish(actx, demoTopic, payload, mqttkeep.WithQoS(1)); err != nil {
				return err
			}
			d.recordAck(seq)
			return nil
		}, func(attempt int, err error) {
			if errors.Is(err, errGateClosed) || (errors.Is(err, context.DeadlineExceeded) && !d.isGateOpen()) {
				return // held back on purpose, not a failure
			}
			failed++
			if failed == 1 {
				d.out.event("publish_retry", fmt.Sprintf("pub: publishing seq %d failed (%s); retrying the same sequence number", seq, errText(err)),
					"client", "pub", "seq", seq, "error", errText(err))
			}
		})
		if err != nil {
			if ctx.Err() == nil {
				d.out.event("publish_failed", fmt.Sprintf("pub: seq %d not published: %s", seq, errText(err)), "client", "pub", "seq", seq, "error", errText(err))
			}
			return
		}
		if failed > 0 {
			d.out.event("publish_recovered", fmt.Sprintf("pub: seq %d acknowledged after %s", seq, plural(failed, "failed attempt", "failed attempts")), "client", "pub", "seq", seq, "failed_attempts", failed)
		}
	}
}

// recordAck records that the broker acknowledged seq.
func (d *demo) recordAck(seq uint64) {
	now := time.Now()
	var rec *recovery
	d.update(func() {
		d.acked[seq] = true
		// No publish was in flight when the broker stopped (see
		// restartBroker): any acknowledgement now came on a new connection.
		if r := d.openRecovery("pub", func(r *recovery) *time.Duration { return &r.flowing }); r != nil {
			r.flowing = now.Sub(r.at)
			rec = r
		}
	})
	d.trace.acked(now, seq)
	if rec != nil {
		d.out.event("publishing_again", fmt.Sprintf("pub publishing again: seq %d acknowledged, %s after the %s", seq, fmtDur(rec.flowing), rec.fault),
			"client", "pub", "seq", seq, "fault", rec.fault, "after_s", secs(rec.flowing))
	}
}

func (d *demo) isGateOpen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gateOpen
}

// waitGate waits until pub may publish.
func (d *demo) waitGate(ctx context.Context) error {
	if d.waitFor(ctx, 24*time.Hour, func() bool { return d.gateOpen }) {
		return nil
	}
	return ctx.Err()
}
