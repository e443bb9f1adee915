package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

func (d *demo) onConnect(name string) func(mqttkeep.ConnectEvent) {
	return func(e mqttkeep.ConnectEvent) {
		now := time.Now()
		var rec *recovery
		var first bool
		var reopened string
		d.update(func() {
			cc := d.clients[name]
			cc.connects++
			first = cc.connects == 1
			if rec = d.openRecovery(name, func(r *recovery) *time.Duration { return &r.reconnected }); rec != nil {
				rec.reconnected = now.Sub(rec.at)
			}
			if name == "sub" && !d.gateOpen {
				d.gateOpen, reopened = true, d.gateReason
			}
		})
		d.trace.state(name, stateConnected)
		fields := []any{"client", name, "session_present", e.SessionPresent, "attempt", e.Attempt,
			"downtime_s", secs(e.Downtime), "keepalive_s", secs(e.KeepAlive)}
		if e.ResubscribeErr != nil {
			fields = append(fields, "resubscribe_error", errText(e.ResubscribeErr))
		}
		if first {
			how := "directly to the broker"
			if name == "sub" {
				how = "through the fault proxy"
			}
			d.out.event("connected", fmt.Sprintf("%s connected %s (keep alive %v)", name, how, e.KeepAlive), fields...)
			return
		}
		text := fmt.Sprintf("%s reconnected: attempt %d, session present %t, down %s", name, e.Attempt, e.SessionPresent, fmtDur(e.Downtime))
		if rec != nil {
			text += fmt.Sprintf(", %s after the %s", fmtDur(rec.reconnected), rec.fault)
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.reconnected))
		}
		switch {
		case name != "sub" || e.SessionPresent:
		case e.ResubscribeErr == nil:
			text += "; the library re-subscribed to " + demoTopic + " by itself"
		default:
			text += "; re-subscribing FAILED: " + errText(e.ResubscribeErr)
		}
		d.out.event("reconnected", text, fields...)
		if reopened != "" {
			d.out.event("publisher_resumed", "pub may publish again: "+reopened)
		}
	}
}

func (d *demo) onDisconnect(name string) func(mqttkeep.DisconnectEvent) {
	return func(e mqttkeep.DisconnectEvent) {
		if e.Err == nil {
			d.trace.state(name, stateDown)
			d.out.event("closed", name+" closed (DISCONNECT sent)", "client", name)
			return
		}
		if e.WillReconnect {
			d.trace.state(name, stateReconnecting)
		} else {
			d.trace.state(name, stateDown)
		}
		now := time.Now()
		var rec *recovery
		pingTimeout := errors.Is(e.Err, mqttkeep.ErrPingTimeout)
		d.update(func() {
			d.clients[name].losses++
			if rec = d.openRecovery(name, func(r *recovery) *time.Duration { return &r.detected }); rec != nil {
				rec.detected = now.Sub(rec.at)
				rec.silent = now.Sub(maxTime(rec.at, d.lastRecvAt))
				if !e.LastReceived.IsZero() { // the library knows when the last byte came
					rec.silent = now.Sub(e.LastReceived)
				}
				rec.cause = e.Err
				rec.detectedByPingTimer = pingTimeout
			}
		})
		if rec != nil && rec.bound > 0 {
			d.trace.detection(name, now.Add(-rec.silent), now, rec.bound)
		}
		fields := []any{"client", name, "cause", errText(e.Err), "ping_timeout", pingTimeout,
			"uptime_s", secs(e.Uptime), "will_reconnect", e.WillReconnect}
		var text string
		switch {
		case rec != nil && pingTimeout:
			text = fmt.Sprintf("link dead: %s: ping timeout detected after %s", name, fmtDur(rec.detected))
			if late := rec.detected - rec.silent; late > time.Millisecond {
				text += fmt.Sprintf(" (the last message arrived %s after the blackhole: silent for %s)", fmtDur(late), fmtDur(rec.silent))
			}
			text += fmt.Sprintf(" (bound K/2 + ping timeout = %s)", fmtDur(d.bound))
			if rec.silent > d.bound+detectSlack {
				text += " LATE"
			}
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.detected), "silent_s", secs(rec.silent), "bound_s", secs(d.bound))
		case rec != nil:
			text = fmt.Sprintf("%s lost its connection %s after the %s: %s", name, fmtDur(rec.detected), rec.fault, causeName(e.Err))
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.detected))
		default:
			text = fmt.Sprintf("%s lost its connection: %s", name, errText(e.Err))
		}
		d.out.event("disconnected", text, fields...)
	}
}

func (d *demo) onReconnecting(name string) func(mqttkeep.ReconnectingEvent) {
	return func(e mqttkeep.ReconnectingEvent) {
		d.out.event("reconnecting", fmt.Sprintf("%s reconnecting: attempt %d in %s (%s)", name, e.Attempt, fmtDur(e.Delay), causeName(e.Err)),
			"client", name, "attempt", e.Attempt, "delay_s", secs(e.Delay), "cause", errText(e.Err))
	}
}

// onMessage is sub's handler for demo/counter.
func (d *demo) onMessage(m *mqttkeep.Message) {
	seq, err := strconv.ParseUint(string(m.Payload), 10, 64)
	if err != nil {
		return
	}
	now := time.Now()
	var first, repeat bool
	var rec *recovery
	d.update(func() {
		d.received[seq]++
		repeat = d.received[seq] > 1
		d.deliveries++
		if m.Duplicate {
			d.resent++
			if !repeat {
				d.resentFirst++
			}
		}
		d.lastRecvAt = now
		first, d.gotFirst = !d.gotFirst, true
		// After the loss was reported the old connection is closed: this
		// message came on a new one. (Bytes already on their way when the
		// proxy started dropping may still arrive before that.)
		if r := d.openRecovery("sub", func(r *recovery) *time.Duration { return &r.flowing }); r != nil && r.detected >= 0 {
			r.flowing = now.Sub(r.at)
			rec = r
		}
	})
	d.trace.received(now, seq, m.Duplicate, repeat)
	switch {
	case first:
		d.out.event("first_message", fmt.Sprintf("sub received seq %d: messages are flowing", seq), "client", "sub", "seq", seq)
	case rec != nil:
		d.out.event("flowing_again", fmt.Sprintf("messages flowing again: sub received seq %d%s, %s after the %s", seq, dupText(m.Duplicate, repeat), fmtDur(rec.flowing), rec.fault),
			"client", "sub", "seq", seq, "dup_flag", m.Duplicate, "duplicate", repeat, "fault", rec.fault, "after_s", secs(rec.flowing))
	case repeat:
		d.out.event("duplicate", fmt.Sprintf("sub received seq %d again%s", seq, dupText(m.Duplicate, repeat)),
			"client", "sub", "seq", seq, "dup_flag", m.Duplicate, "duplicate", true)
	}
}

// dupText words the DUP flag truthfully: the broker re-sent the message,
// which makes it a duplicate only if its payload had arrived before.
func dupText(dupFlag, repeat bool) string {
	switch {
	case dupFlag && repeat:
		return " (DUP flag: a re-send by the broker, and a duplicate: this seq had arrived before)"
	case dupFlag:
		return " (DUP flag: a re-send by the broker of a message whose first delivery was lost with the connection; its first arrival here, not a duplicate)"
	case repeat:
		return " (a duplicate: this seq had arrived before)"
	}
	return ""
}

// onPing reports each PINGRESP, from the library's ping hook.
func (d *demo) onPing(name string) func(mqttkeep.PingEvent) {
	return func(e mqttkeep.PingEvent) {
		if name == "sub" {
			d.update(func() { d.lastRecvAt = maxTime(d.lastRecvAt, e.At) })
		}
		d.trace.ping(name, e.At, e.RTT)
		d.out.event("ping", fmt.Sprintf("%s PINGRESP, rtt %s", name, fmtRTT(e.RTT)), "client", name, "rtt_ms", ms(e.RTT))
	}
}
