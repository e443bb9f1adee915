package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// retryPause is the short wait before a publish is tried again.
const retryPause = 100 * time.Millisecond

// deliverer publishes a message until the broker acknowledged it, across
// reconnects. The library already queues a message published while it is
// reconnecting and sends it again when a reconnect lost the session; the
// deliverer covers what is left: ErrNotConnected (queueing turned off, or
// a connection that dropped at the wrong moment), a full offline queue and
// an attempt that took too long.
type deliverer struct {
	client *mqttkeep.Client
	// attemptTimeout bounds one attempt (0: only ctx does); the message is
	// then published again (and may arrive twice).
	attemptTimeout time.Duration
}

// deliver calls publish (one Publish call on d.client) until it returns nil.
// It tries again, after a short wait, while that may help; it gives up when
// ctx ends, the client is closed or stopped, or the broker refused the
// message. onRetry, if not nil, is called before each new attempt with the
// number of the failed one and its error.
func (d *deliverer) deliver(ctx context.Context, publish func(ctx context.Context) error, onRetry func(attempt int, err error)) error {
	for attempt := 1; ; attempt++ {
		err := d.attempt(ctx, publish)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last attempt: %s)", context.Cause(ctx), errText(err))
		}
		if !retryable(err) {
			return err
		}
		if onRetry != nil {
			onRetry(attempt, err)
		}
		if !sleepCtx(ctx, retryPause) {
			return fmt.Errorf("%w (last attempt: %s)", context.Cause(ctx), errText(err))
		}
		// Wait for the connection. A client that stopped for good (a final
		// refusal, a session taken over) or was closed will not deliver.
		if err := d.client.AwaitConnected(ctx); err != nil && ctx.Err() == nil {
			if st := d.client.State(); st == mqttkeep.StateStopped || st == mqttkeep.StateClosed {
				return err
			}
		}
	}
}

// attempt runs publish once, bounded by attemptTimeout.
func (d *deliverer) attempt(ctx context.Context, publish func(ctx context.Context) error) error {
	if d.attemptTimeout <= 0 {
		return publish(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, d.attemptTimeout)
	defer cancel()
	return publish(actx)
}

// retryable reports whether publishing the same message again may succeed.
func retryable(err error) bool {
	var rc *mqttkeep.ReasonCodeError
	switch {
	case errors.Is(err, mqttkeep.ErrClosed),
		errors.Is(err, mqttkeep.ErrInvalidTopic),
		errors.Is(err, mqttkeep.ErrInvalidQoS),
		isFinal(err):
		return false
	case errors.As(err, &rc) && !errors.Is(err, mqttkeep.ErrNotConnected):
		return false // the broker refused this message (PUBACK/PUBREC reason code)
	}
	// Not connected, offline queue full, attempt timed out.
	return true
}

// sleepCtx waits d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
