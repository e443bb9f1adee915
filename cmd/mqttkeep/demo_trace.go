package main

import (
	"sync"
	"time"
)

// clientState is what a client's swimlane shows.
type clientState int

const (
	stateDown         clientState = iota // not started, or closed
	stateConnected                       // a CONNACK came; until the loss is reported
	stateReconnecting                    // the loss was reported, or the first Connect is under way
)

// trace records what the demo's SVG draws, with times since the start.
// Its methods are safe for concurrent use (hooks, the handler, the
// publisher and the timeline all record).
type trace struct {
	mu         sync.Mutex
	start, end time.Time
	states     map[string][]stateChange
	pings      map[string][]pingMark
	faults     []faultWindow
	detections []detectionMark
	recv       []recvMark
	acks       []ackMark
	phases     []phaseMark
}

type stateChange struct {
	at    time.Duration
	state clientState
}

type pingMark struct{ at, rtt time.Duration }

type faultWindow struct {
	name     string
	from, to time.Duration // to < 0: still open
}

// detectionMark is one dead link reported: silent from when the last
// byte arrived until the report; the bound is K/2 + ping timeout.
type detectionMark struct {
	client               string
	silentFrom, detected time.Duration
	bound                time.Duration
}

type recvMark struct {
	at     time.Duration
	seq    uint64
	dup    bool // the DUP flag: a re-send by the broker
	repeat bool // the seq had arrived before: a duplicate
}

type ackMark struct {
	at  time.Duration
	seq uint64
}

type phaseMark struct {
	at   time.Duration
	name string
}

func newTrace(start time.Time) *trace {
	return &trace{start: start, states: make(map[string][]stateChange), pings: make(map[string][]pingMark)}
}

func (t *trace) since(at time.Time) time.Duration { return max(at.Sub(t.start), 0) }

func (t *trace) state(client string, s clientState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.states[client] = append(t.states[client], stateChange{t.since(time.Now()), s})
}

func (t *trace) ping(client string, at time.Time, rtt time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pings[client] = append(t.pings[client], pingMark{t.since(at), rtt})
}

func (t *trace) faultStart(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, faultWindow{name: name, from: t.since(time.Now()), to: -1})
}

// faultEnd closes the latest fault window.
func (t *trace) faultEnd() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := len(t.faults); n > 0 && t.faults[n-1].to < 0 {
		t.faults[n-1].to = t.since(time.Now())
	}
}

func (t *trace) detection(client string, silentFrom, at time.Time, bound time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.detections = append(t.detections, detectionMark{client, t.since(silentFrom), t.since(at), bound})
}

func (t *trace) received(at time.Time, seq uint64, dup, repeat bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recv = append(t.recv, recvMark{t.since(at), seq, dup, repeat})
}

func (t *trace) acked(at time.Time, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acks = append(t.acks, ackMark{t.since(at), seq})
}

func (t *trace) phase(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phases = append(t.phases, phaseMark{t.since(time.Now()), name})
}

// finish ends the recording: open fault windows close now.
func (t *trace) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.end = time.Now()
	for i := range t.faults {
		if t.faults[i].to < 0 {
			t.faults[i].to = t.since(t.end)
		}
	}
}
