package main

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// summary prints the final table (or JSON object) and returns the exit
// status: 0 when no acknowledged message was lost.
func (d *demo) summary(completed bool) int {
	d.mu.Lock()
	lost := d.missingLocked()
	published, received := len(d.acked), d.deliveries
	duplicated, unacked := 0, 0
	for seq, n := range d.received {
		duplicated += max(n-1, 0)
		if !d.acked[seq] {
			unacked++
		}
	}
	subLosses, pubLosses := d.clients["sub"].losses, d.clients["pub"].losses
	resent, resentFirst := d.resent, d.resentFirst
	conditions := append([]string(nil), d.heldBack...)
	recs := make([]recovery, len(d.recoveries))
	for i, r := range d.recoveries {
		recs[i] = *r
	}
	d.mu.Unlock()

	// An interrupted run may stop with messages still on their way (queued
	// for a blackholed sub, say): they are "not received", not proven lost,
	// but the exit status is still 1.
	code, verdict := exitOK, "PASS"
	switch {
	case len(lost) > 0 && completed:
		code, verdict = exitFail, "FAIL"
	case len(lost) > 0:
		code, verdict = exitFail, "INCOMPLETE"
	}
	if d.out.json {
		faults := make([]map[string]any, 0, len(recs))
		for _, r := range recs {
			f := map[string]any{"fault": r.fault, "client": r.client, "cause": causeName(r.cause),
				"detected_s": secsOrNil(r.detected), "reconnected_s": secsOrNil(r.reconnected), "flowing_again_s": secsOrNil(r.flowing)}
			if r.bound > 0 {
				f["bound_s"] = secs(r.bound)
				f["silent_s"] = secsOrNil(r.silent)
				f["within_bound"] = r.silent >= 0 && r.silent <= r.bound+detectSlack
			}
			faults = append(faults, f)
		}
		d.out.event("summary", "",
			"completed", completed,
			"disconnects", map[string]int{"sub": subLosses, "pub": pubLosses},
			"faults", faults,
			"published", published, "received", received, "duplicated", duplicated,
			"resent_dup_flag", resent, "resent_first_deliveries", resentFirst,
			"received_unacknowledged", unacked,
			"lost", len(lost), "lost_seqs", append([]uint64{}, lost...),
			"verdict", strings.ToLower(verdict), "verdict_conditions", append([]string{}, conditions...), "exit_code", code)
		return code
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "\nsummary (keep alive %v, ping timeout %v: a dead link must be reported within %v)\n", d.keepAlive, d.pingTimeout, d.bound)
	if len(recs) == 0 {
		fmt.Fprintln(&b, "  no fault was injected")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(recs) > 0 {
		fmt.Fprintln(tw, "  fault\tclient\tcause\tdetected\tbound\treconnected\tflowing again")
	}
	for _, r := range recs {
		bound, detected := "-", fmtDurOrDash(r.detected)
		if r.bound > 0 {
			bound = fmtDur(r.bound)
			if r.silent > r.bound+detectSlack {
				bound += " (LATE)"
			}
			if r.detected-r.silent > time.Millisecond {
				detected += fmt.Sprintf(" (silent %s)", fmtDur(r.silent))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.fault, r.client, causeName(r.cause),
			detected, bound, fmtDurOrDash(r.reconnected), fmtDurOrDash(r.flowing))
	}
	_ = tw.Flush()
	if len(recs) > 0 {
		fmt.Fprintln(&b, "  (times from the fault; the bound counts from the last byte received, and the hook that reports")
		fmt.Fprintln(&b, "   the loss runs a millisecond or so after the timer; flowing again = first message received by")
		fmt.Fprintln(&b, "   sub, first publish acknowledged for pub)")
	}
	fmt.Fprintf(&b, "  disconnects: sub %d, pub %d (connection losses; the final Close not counted)\n", subLosses, pubLosses)
	lostWord := "lost"
	if !completed {
		lostWord = "not received"
	}
	fmt.Fprintf(&b, "  messages: published %d (acknowledged by the broker), received %d, duplicated %d, %s %d\n", published, received, duplicated, lostWord, len(lost))
	if resent > 0 {
		fmt.Fprintf(&b, "  (%s carried the DUP flag, re-sends by the broker after a reconnect; %d of them %s the first arrival\n",
			plural(resent, "delivery", "deliveries"), resentFirst, verb(resentFirst, "was", "were"))
		fmt.Fprintf(&b, "   of their seq, not duplicates: duplicated counts the payloads that arrived more than once)\n")
	}
	if unacked > 0 {
		fmt.Fprintf(&b, "  (%s had not been acknowledged to pub: %s publish was retried or cut short)\n",
			plural(unacked, "received message", "received messages"), verb(unacked, "its", "their"))
	}
	partial := ""
	if !completed {
		partial = " (partial run: the timeline did not complete)"
	}
	switch verdict {
	case "PASS":
		fmt.Fprintf(&b, "verdict: PASS%s: every acknowledged message arrived (lost 0); exit status %d\n", partial, code)

	case "FAIL":
		fmt.Fprintf(&b, "verdict: FAIL: %s never arrived (seq %s); exit status %d\n", plural(len(lost), "acknowledged message", "acknowledged messages"), joinSeqs(lost), code)
	default:
		fmt.Fprintf(&b, "verdict: INCOMPLETE%s: %s not received before the end (seq %s); exit status %d\n", partial, plural(len(lost), "acknowledged message", "acknowledged messages"), joinSeqs(lost), code)
	}
	if len(conditions) > 0 {
		fmt.Fprintf(&b, "  conditions of this verdict (the broker's limits, not the client's):\n")
		for _, c := range conditions {
			fmt.Fprintf(&b, "  - %s\n", c)
		}
	}
	_, _ = d.out.w.Write(b.Bytes())
	return code
}
