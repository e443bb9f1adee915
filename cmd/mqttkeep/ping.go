package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// Ping's exit statuses, those of ping(8).
const (
	pingAnswered = 0 // at least one PINGRESP (and -c of them when -w ends the run)
	pingNoAnswer = 1 // not one PINGRESP
	pingError    = 2 // bad command line, or a broker that refused us for good
)

// pingFlags are ping(8)'s flags.
type pingFlags struct {
	count    countFlag
	interval durationFlag
	wait     durationFlag // -W: how long each PINGREQ waits for its PINGRESP
	deadline durationFlag // -w: how long the whole run lasts
	quiet    bool
}

// pingStats are the round trips of one run.
type pingStats struct {
	sent, received int
	min, max, sum  time.Duration
	sum2           float64 // sum of squares, in ns², for mdev
}

func (p *pingStats) add(rtt time.Duration) {
	if p.received == 0 || rtt < p.min {
		p.min = rtt
	}
	p.max = max(p.max, rtt)
	p.received++
	p.sum += rtt
	p.sum2 += float64(rtt) * float64(rtt)
}

// summary is ping(8)'s last two lines.
func (p *pingStats) summary(elapsed time.Duration) string {
	loss := 0
	if p.sent > 0 {
		loss = (p.sent - p.received) * 100 / p.sent
	}
	s := fmt.Sprintf("%s sent, %s received, %d%% loss, time %dms\n",
		plural(p.sent, "PINGREQ", "PINGREQs"), plural(p.received, "PINGRESP", "PINGRESPs"), loss, elapsed.Milliseconds())
	if p.received > 0 {
		avg := float64(p.sum) / float64(p.received)
		mdev := math.Sqrt(max(p.sum2/float64(p.received)-avg*avg, 0))
		s += fmt.Sprintf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", msf(p.min), avg/1e6, msf(p.max), mdev/1e6)
	}
	return s
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

// runPing is "mqttkeep ping": one PINGREQ per interval (Client.Ping), the
// round trip of each PINGRESP, and ping(8)'s summary. The connection is
// kept (and reported) across losses; a PINGREQ that finds no connection,
// or gets no answer within -W, counts as lost.
func runPing(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("ping")
	var cf connFlags
	cf.registerExcept(fs, "ping", "i", "c")
	var f pingFlags
	f.count = countFlag{min: 1, max: 1<<31 - 1}
	fs.Var(&f.count, "c", "stop after this many PINGREQs")
	f.interval = durationFlag{d: time.Second, fractional: true, min: 10 * time.Millisecond, max: time.Hour}
	fs.Var(&f.interval, "i", "interval between PINGREQs")
	f.wait = durationFlag{d: 10 * time.Second, fractional: true, min: time.Millisecond, max: time.Hour}
	fs.Var(&f.wait, "W", "how long a PINGREQ waits for its PINGRESP")
	f.deadline = durationFlag{fractional: true, min: time.Millisecond}
	fs.Var(&f.deadline, "w", "stop after this long")
	fs.BoolVar(&f.quiet, "q", false, "only the first line and the summary")
	if code, done := parseArgs(fs, "ping", args, s, &cf.password, cf.props.flag()); done {
		return code
	}
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "ping", err.Error(), &cf.password)
	}
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "ping", optionErrText(err), &cf.password)
	}
	rep := &reporter{cmd: "ping", w: s.out, secret: cf.password, quiet: f.quiet}
	stopped := reportConnection(client, rep, true)
	var wg sync.WaitGroup
	pctx, cancelPings := context.WithCancel(context.Background())
	defer func() {
		cancelPings()
		wg.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()

	// Wait up to -W for the first connection, so that the first PINGREQ
	// does not find none; the run goes on either way.
	first, cancelFirst := context.WithTimeout(ctx, f.wait.d)
	err = client.Connect(first)
	cancelFirst()
	if isFinal(err) {
		rep.quiet = false
		rep.printf("the broker refused the connection: %s", cause(err))
		return pingError
	}
	if ctx.Err() != nil {
		return pingNoAnswer
	}
	fmt.Fprintf(s.out, "PING %s: a PINGREQ every %v, each waiting up to %v for its PINGRESP; %s\n",
		cf.server, f.interval.d, f.wait.d, keepAliveNote(client, cf.keepAlive.d))
	if err != nil {
		fmt.Fprintf(s.out, "not connected within -W %v (%s): the PINGREQs sent meanwhile count as lost\n",
			f.wait.d, strings.TrimPrefix(cause(err), "context deadline exceeded; "))
	}

	type result struct {
		seq int
		rtt time.Duration
		err error
	}
	results := make(chan result)
	var st pingStats
	began := time.Now()
	tick := time.NewTicker(f.interval.d)
	defer tick.Stop()
	var deadline <-chan time.Time
	if f.deadline.d > 0 {
		t := time.NewTimer(f.deadline.d)
		defer t.Stop()
		deadline = t.C
	}
	outstanding := 0
	send := func() {
		st.sent++
		outstanding++
		seq := st.sent
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(pctx, f.wait.d)
			defer cancel()
			rtt, err := client.Ping(wctx)
			select {
			case results <- result{seq, rtt, err}:
			case <-pctx.Done():
			}
		}()
	}
	send()
	finish := func() int {
		cancelPings()
		fmt.Fprintf(s.out, "--- %s MQTT ping statistics ---\n%s", cf.server, st.summary(time.Since(began)))
		switch {
		case st.received == 0:
			return pingNoAnswer
		case f.deadline.d > 0 && f.count.n > 0 && st.received < f.count.n:
			return pingNoAnswer // ping(8): -c and -w, fewer answers than -c
		}
		return pingAnswered
	}
	for {
		if f.count.n > 0 && st.sent >= f.count.n && outstanding == 0 {
			return finish()
		}
		select {
		case <-ctx.Done():
			return finish()
		case <-deadline:
			return finish()
		case err := <-stopped:
			rep.quiet = false
			rep.printf("the broker refused the connection: %s", cause(err))
			finish()
			return pingError
		case <-tick.C:
			if f.count.n == 0 || st.sent < f.count.n {
				send()
			}
		case r := <-results:
			outstanding--
			if r.err == nil {
				st.add(r.rtt)
				if !f.quiet {
					fmt.Fprintf(s.out, "PINGRESP from %s: seq=%d time=%.3f ms\n", cf.server, r.seq, msf(r.rtt))
				}
				continue
			}
			if !f.quiet {
				fmt.Fprintf(s.out, "no PINGRESP for seq=%d: %s\n", r.seq, pingErrText(r.err, f.wait.d))
			}
		}
	}
}

// pingErrText says why a PINGREQ got no answer.
func pingErrText(err error, wait time.Duration) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("none within -W %v", wait)
	case errors.Is(err, mqttkeep.ErrTooManyPings):
		return "not sent: too many PINGREQs already waiting"
	case errors.Is(err, mqttkeep.ErrNotConnected):
		if c := cause(err); c != "not connected" {
			return c
		}
		return "not connected"
	}
	return cause(err)
}

// keepAliveNote says whether the library pings by itself too.
func keepAliveNote(c *mqttkeep.Client, asked time.Duration) string {
	k, imposed := asked, false
	if caps, ok := c.Capabilities(); ok && caps.ServerKeepAliveSet {
		k, imposed = caps.ServerKeepAlive, true
	}
	by := "asked"
	if imposed {
		by = "imposed by the broker"
	}
	if k == 0 {
		return fmt.Sprintf("keep alive 0 (%s): automatic pings off, only these PINGREQs are sent", by)
	}
	return fmt.Sprintf("keep alive %v (%s): automatic pings on, the library also sends a PINGREQ after %v without traffic (not counted here)", k, by, k/2)
}
