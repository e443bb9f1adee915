package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"
)

// The SVG's geometry, in user units (pixels at 100%).
const (
	svgWidth    = 1000.0
	svgHeight   = 590.0
	svgLeft     = 70.0  // room for the lane labels
	svgRight    = 20.0  // right margin
	svgLaneH    = 22.0  // height of a swimlane
	svgSubY     = 78.0  // sub's lane
	svgPubY     = 138.0 // pub's lane
	svgPlotTop  = 190.0 // the sequence plot
	svgPlotBot  = 500.0
	svgLegendY  = 545.0
	svgFaultTop = 52.0
)

// State colours of the swimlanes.
var stateColours = map[clientState]string{
	stateConnected:    "#43a047",
	stateReconnecting: "#ffb300",
	stateDown:         "#bdbdbd",
}

// svg draws the run: one swimlane per client (connected, reconnecting,
// down), the fault windows shaded across the picture, each PINGRESP as a
// tick over its client's lane, each dead link's detection as an arrow from
// the last byte received to the report, against the K/2 + ping timeout
// bound, and below, the sequence number sub received over time (with DUP
// re-sends and duplicates marked). Hand-written SVG 1.1, no dependency.
func (d *demo) svg() []byte {
	t := d.trace
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.since(t.end)
	if t.end.IsZero() {
		end = t.since(time.Now())
	}
	total := max(end, time.Second)
	x := func(at time.Duration) float64 {
		return svgLeft + (svgWidth-svgLeft-svgRight)*math.Min(float64(at)/float64(total), 1)
	}
	var maxSeq uint64 = 1
	for _, r := range t.recv {
		maxSeq = max(maxSeq, r.seq)
	}
	for _, a := range t.acks {
		maxSeq = max(maxSeq, a.seq)
	}
	ySeq := func(seq uint64) float64 {
		return svgPlotBot - (svgPlotBot-svgPlotTop)*float64(seq)/float64(maxSeq)
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="11">
<title>mqttkeep demo: keep alive %v, bound K/2 + ping timeout = %v</title>
<defs><marker id="arrow-ok" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#2e7d32"/></marker><marker id="arrow-late" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#c62828"/></marker></defs>
<rect width="100%%" height="100%%" fill="#ffffff"/>
<text x="%g" y="18" font-size="14" font-weight="bold">mqttkeep demo: keep alive K = %v, a dead link must be reported within K/2 + ping timeout = %v</text>
`, svgWidth, svgHeight, svgWidth, svgHeight, d.keepAlive, d.bound, svgLeft, d.keepAlive, d.bound)

	// Fault windows, shaded behind everything.
	b.WriteString(`<g id="faults">` + "\n")
	for _, f := range t.faults {
		x0, x1 := x(f.from), x(f.to)
		fmt.Fprintf(&b, `<rect class="fault" x="%.1f" y="%g" width="%.1f" height="%g" fill="#e53935" fill-opacity="0.13"><title>%s: %.3fs to %.3fs</title></rect>`+"\n",
			x0, svgFaultTop, math.Max(x1-x0, 1), svgPlotBot-svgFaultTop, esc(f.name), f.from.Seconds(), f.to.Seconds())
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" fill="#c62828">%s</text>`+"\n", x0+2, svgFaultTop+10, esc(f.name))
	}
	b.WriteString("</g>\n")

	// Phases: a dashed line and a name at the top.
	b.WriteString(`<g id="phases" fill="#616161" stroke="#9e9e9e">` + "\n")
	for _, p := range t.phases {
		tx, anchor := x(p.at)+2, "start"
		if tx > svgWidth-svgRight-60 {
			tx, anchor = x(p.at)-2, "end"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="34" x2="%.1f" y2="%g" stroke-dasharray="2,3"/><text x="%.1f" y="42" stroke="none" text-anchor="%s">%s</text>`+"\n",
			x(p.at), x(p.at), svgPlotBot, tx, anchor, esc(p.name))
	}
	b.WriteString("</g>\n")

	// Swimlanes.
	b.WriteString(`<g id="lanes">` + "\n")
	for _, lane := range []struct {
		name string
		y    float64
	}{{"sub", svgSubY}, {"pub", svgPubY}} {
		fmt.Fprintf(&b, `<g id="lane-%s"><text x="%g" y="%.1f" text-anchor="end" font-weight="bold">%s</text>`+"\n", lane.name, svgLeft-8, lane.y+15, lane.name)
		from, st := time.Duration(0), stateDown
		for _, c := range append(t.states[lane.name], stateChange{end, stateDown}) {
			if c.at > from {
				fmt.Fprintf(&b, `<rect class="state-%s" x="%.1f" y="%g" width="%.1f" height="%g" fill="%s"><title>%s %s: %.3fs to %.3fs</title></rect>`+"\n",
					stateName(st), x(from), lane.y, x(c.at)-x(from), svgLaneH, stateColours[st], lane.name, stateName(st), from.Seconds(), c.at.Seconds())
			}
			from, st = max(from, c.at), c.state
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</g>\n")

	// Ping ticks over the lanes.
	b.WriteString(`<g id="pings" stroke="#283593" stroke-width="1.5">` + "\n")
	for _, lane := range []struct {
		name string
		y    float64
	}{{"sub", svgSubY}, {"pub", svgPubY}} {
		for _, p := range t.pings[lane.name] {
			fmt.Fprintf(&b, `<line class="ping" x1="%.1f" y1="%g" x2="%.1f" y2="%g"><title>%s PINGRESP at %.3fs, rtt %s</title></line>`+"\n",
				x(p.at), lane.y-9, x(p.at), lane.y-1, lane.name, p.at.Seconds(), fmtRTT(p.rtt))
		}
	}
	b.WriteString("</g>\n")

	// Detections: last byte received → loss reported, against the bound.
	b.WriteString(`<g id="detections">` + "\n")
	for _, dm := range t.detections {
		y := svgSubY + svgLaneH + 12
		if dm.client == "pub" {
			y = svgPubY + svgLaneH + 12
		}
		took := dm.detected - dm.silentFrom
		colour, verdict, marker := "#2e7d32", "within", "arrow-ok"
		if took > dm.bound+detectSlack {
			colour, verdict, marker = "#c62828", "LATE, beyond", "arrow-late"
		}
		bx := x(dm.silentFrom + dm.bound)
		fmt.Fprintf(&b, `<line class="detection" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2" marker-end="url(#%s)"><title>%s: silent from %.3fs, loss reported at %.3fs: %.3fs, %s the bound %v</title></line>`+"\n",
			x(dm.silentFrom), y, x(dm.detected), y, colour, marker, dm.client, dm.silentFrom.Seconds(), dm.detected.Seconds(), took.Seconds(), verdict, dm.bound)
		fmt.Fprintf(&b, `<line class="bound" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#212121" stroke-dasharray="3,2"/>`+"\n", bx, y-7, bx, y+7)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">loss reported %.2fs after the last byte received (bound %v)</text>`+"\n", x(dm.detected)+4, y+4, colour, took.Seconds(), dm.bound)
	}
	b.WriteString("</g>\n")

	// The sequence plot.
	fmt.Fprintf(&b, `<g id="axes" stroke="#424242"><line x1="%g" y1="%g" x2="%g" y2="%g"/><line x1="%g" y1="%g" x2="%g" y2="%g"/></g>`+"\n",
		svgLeft, svgPlotTop, svgLeft, svgPlotBot, svgLeft, svgPlotBot, svgWidth-svgRight, svgPlotBot)
	fmt.Fprintf(&b, `<text x="%g" y="%g" transform="rotate(-90 %g %g)" text-anchor="middle">sequence number received by sub</text>`+"\n",
		svgLeft-40, (svgPlotTop+svgPlotBot)/2, svgLeft-40, (svgPlotTop+svgPlotBot)/2)
	step := niceStep(total)
	b.WriteString(`<g id="time-axis" fill="#424242">` + "\n")
	for at := time.Duration(0); at <= total; at += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#424242"/><text x="%.1f" y="%g" text-anchor="middle">%gs</text>`+"\n",
			x(at), svgPlotBot, x(at), svgPlotBot+5, x(at), svgPlotBot+17, at.Seconds())
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">seq %d</text><text x="%g" y="%g" text-anchor="middle">0</text>`+"\n",
		svgLeft-18, svgPlotTop+4, maxSeq, svgLeft-10, svgPlotBot+4)
	b.WriteString("</g>\n")
	b.WriteString(`<g id="acks" fill="#9e9e9e">` + "\n")
	for _, a := range t.acks {
		fmt.Fprintf(&b, `<rect class="ack" x="%.1f" y="%.1f" width="2" height="2"/>`+"\n", x(a.at)-1, ySeq(a.seq)-1)
	}
	b.WriteString("</g>\n")
	b.WriteString(`<g id="seq">` + "\n")
	for _, r := range t.recv {
		class, fill, rad := "recv", "#1e88e5", 2.2
		switch {
		case r.repeat:
			class, fill, rad = "duplicate", "#e53935", 3.2
		case r.dup:
			class, fill, rad = "resent", "#fb8c00", 3.0
		}
		fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="%g" fill="%s"><title>seq %d at %.3fs</title></circle>`+"\n",
			class, x(r.at), ySeq(r.seq), rad, fill, r.seq, r.at.Seconds())
	}
	b.WriteString("</g>\n")

	// Legend.
	b.WriteString(`<g id="legend">` + "\n")
	lx := svgLeft
	item := func(shape, label string) {
		fmt.Fprintf(&b, shape+`<text x="%.1f" y="%g">%s</text>`+"\n", lx+16, svgLegendY+4, esc(label))
		lx += 16 + 6.2*float64(len(label)) + 18
	}
	for _, st := range []clientState{stateConnected, stateReconnecting, stateDown} {
		item(fmt.Sprintf(`<rect x="%.1f" y="%g" width="12" height="10" fill="%s"/>`, lx, svgLegendY-5, stateColours[st]), stateName(st))
	}
	item(fmt.Sprintf(`<rect x="%.1f" y="%g" width="12" height="10" fill="#e53935" fill-opacity="0.25"/>`, lx, svgLegendY-5), "fault")
	item(fmt.Sprintf(`<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#283593" stroke-width="1.5"/>`, lx+6, svgLegendY-5, lx+6, svgLegendY+5), "PINGRESP")
	item(fmt.Sprintf(`<circle cx="%.1f" cy="%g" r="2.2" fill="#1e88e5"/>`, lx+6, svgLegendY), "received")
	item(fmt.Sprintf(`<circle cx="%.1f" cy="%g" r="3" fill="#fb8c00"/>`, lx+6, svgLegendY), "DUP re-send, first arrival")
	item(fmt.Sprintf(`<circle cx="%.1f" cy="%g" r="3.2" fill="#e53935"/>`, lx+6, svgLegendY), "duplicate")
	item(fmt.Sprintf(`<rect x="%.1f" y="%g" width="2" height="2" fill="#9e9e9e"/>`, lx+5, svgLegendY-1), "acknowledged to pub")
	fmt.Fprintf(&b, `<text x="%g" y="%g" fill="#424242">arrow: last byte received to loss reported; dashed tick: the K/2 + ping timeout bound</text>`+"\n", svgLeft, svgLegendY+24)
	b.WriteString("</g>\n</svg>\n")
	return b.Bytes()
}

func stateName(s clientState) string {
	switch s {
	case stateConnected:
		return "connected"
	case stateReconnecting:
		return "reconnecting"
	}
	return "down"
}

// niceStep is a time-axis step giving at most about 20 ticks.
func niceStep(total time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute} {
		if total/s <= 20 {
			return s
		}
	}
	return 5 * time.Minute
}

func esc(s string) string { return html.EscapeString(s) }
