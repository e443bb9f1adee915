package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// emitter writes the demo's events: a line "  4.512s  text" each, or with
// --json one JSON object per line with t (seconds since the start), event
// and the event's fields.
type emitter struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

// event writes one event; kv alternates field names and values.
func (e *emitter) event(name, text string, kv ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := time.Since(e.start)
	if !e.json {
		fmt.Fprintf(e.w, "%7.3fs  %s\n", t.Seconds(), text)
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"t":%.3f,"event":%q`, t.Seconds(), name)
	for i := 0; i+1 < len(kv); i += 2 {
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			v, _ = json.Marshal(fmt.Sprint(kv[i+1]))
		}
		k, _ := json.Marshal(fmt.Sprint(kv[i]))
		fmt.Fprintf(&b, ",%s:%s", k, v)
	}
	b.WriteString("}\n")
	_, _ = e.w.Write(b.Bytes())
}

// causeName is a short name for why a connection ended.
func causeName(err error) string {
	var rc *mqttkeep.ReasonCodeError
	switch {
	case err == nil:
		return "-"
	case errors.Is(err, mqttkeep.ErrPingTimeout):
		return "ping timeout"
	case errors.Is(err, mqttkeep.ErrConnectTimeout):
		return "connect timeout"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &rc):
		return fmt.Sprintf("%s 0x%02X", rc.Packet, rc.Code)
	}
	s := errText(err)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func pct(d time.Duration, p int64) time.Duration { return d * time.Duration(p) / 100 }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// secs is d in seconds, rounded to the millisecond, for JSON.
func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1e3) / 1e3 }

func secsOrNil(d time.Duration) any {
	if d < 0 {
		return nil
	}
	return secs(d)
}

// ms is d in milliseconds, rounded to the microsecond, for JSON.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func fmtDurOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmtDur(d)
}

func fmtRTT(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

func joinSeqs(seqs []uint64) string {
	parts := make([]string, 0, min(len(seqs), 20))
	for i, s := range seqs {
		if i == 20 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, strconv.FormatUint(s, 10))
	}
	return strings.Join(parts, ", ")
}
