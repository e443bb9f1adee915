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

// Ping's exit statuses, those of ping(8) (not mosquitto's: a refusal is
// 2, not its reason code, which the message gives).
const (
	pingAnswered = 0 // at least one PINGRESP (with -c and -w: -c of them by the deadline)
	pingNoAnswer = 1 // not one PINGRESP (an unreachable or silent broker), or fewer than -c by -w
	pingError    = 2 // bad command line (exitUsage), or a final refusal: a CONNACK reason code retrying cannot fix, a certificate that does not verify
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
// kept (and reported) across losses. Each PINGREQ is one attempt bounded
// by -W: it waits for a connection, if there is none, then for its
// PINGRESP, all within -W, and counts as lost otherwise. The run ends
// once -c attempts ended (with -w: once -c were answered), at the -w
// deadline counted from the start, or on Ctrl-C: against a broker that
// never answers, "-c N" ends within (N-1) × -i + -W.
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
	fs.Var(&f.wait, "W", "how long a PINGREQ waits for a connection and its PINGRESP")
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
	p := &pinger{f: &f, cf: &cf, s: s, client: client, began: time.Now(), results: make(chan pingResult),
		rep: &reporter{cmd: "ping", w: s.out, secret: cf.password, quiet: f.quiet}}
	p.stopped = reportConnection(client, p.rep, true)
	runCtx := ctx
	if f.deadline.d > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, p.began.Add(f.deadline.d))
		defer cancel()
	}
	p.pctx, p.cancelPings = context.WithCancel(runCtx)
	defer func() {
		p.cancelPings()
		p.wg.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()
	return p.run(runCtx)
}

// pinger is one run of "mqttkeep ping".
type pinger struct {
	f       *pingFlags
	cf      *connFlags
	s       stdio
	client  *mqttkeep.Client
	rep     *reporter
	stopped <-chan error // a final refusal after a connection
	began   time.Time

	pctx        context.Context // the attempts', ended with the run
	cancelPings context.CancelFunc
	wg          sync.WaitGroup // the attempts' goroutines
	results     chan pingResult

	st          pingStats
	outstanding int  // attempts not ended yet
	headed      bool // the first line is out
}

type pingResult struct {
	seq int
	rtt time.Duration
	err error
}

// errNoConnection is an attempt that found no connection within -W.
type errNoConnection struct{ err error }

func (e *errNoConnection) Error() string { return e.err.Error() }
func (e *errNoConnection) Unwrap() error { return e.err }

// run sends the PINGREQs and returns the exit status. runCtx ends on
// Ctrl-C and at the -w deadline.
func (p *pinger) run(runCtx context.Context) int {
	tick := time.NewTicker(p.f.interval.d)
	defer tick.Stop()
	p.send()
	for !p.done() {
		select {
		case <-runCtx.Done():
			p.head() // if Ctrl-C or -w came before the first attempt ended
			return p.finish()
		case err := <-p.stopped:
			return p.refused(err)
		case <-tick.C:
			if p.wantMore() {
				p.send()
			}
		case r := <-p.results:
			p.outstanding--
			if p.final(r.err) {
				return p.refused(r.err)
			}
			p.head()
			p.report(r)
		}
	}
	return p.finish()
}

// head prints the first line, once: after the first attempt, so that it
// can say whether the broker imposed its keep alive.
func (p *pinger) head() {
	if p.headed {
		return
	}
	p.headed = true
	fmt.Fprintf(p.s.out, "PING %s: a PINGREQ every %v, each waiting up to %v for a connection and its PINGRESP; %s\n",
		p.cf.server, p.f.interval.d, p.f.wait.d, keepAliveNote(p.client, p.cf.keepAlive.d))
}

// final reports whether err ended the client for good: a CONNACK reason
// code retrying cannot fix, or a certificate that does not verify (the
// library stops on both).
func (p *pinger) final(err error) bool {
	return err != nil && (isFinal(err) || p.client.State() == mqttkeep.StateStopped)
}

// refused reports a final error: status 2, with the summary when the
// run had begun.
func (p *pinger) refused(err error) int {
	p.rep.quiet = false
	if isFinal(err) {
		p.rep.printf("the broker refused the connection: %s", cause(err))
	} else {
		p.rep.printf("giving up: %s", cause(err))
	}
	if p.headed {
		p.finish()
	}
	return pingError
}

// wantMore reports whether the next tick starts an attempt: always
// without -c; with -c alone until -c were started; with -c and -w, as
// ping(8), until -c were answered.
func (p *pinger) wantMore() bool {
	switch c := p.f.count.n; {
	case c == 0:
		return true
	case p.f.deadline.d > 0:
		return p.st.received < c
	default:
		return p.st.sent < c
	}
}

// done reports whether -c is satisfied: -c attempts started and ended
// (with -w: -c answers).
func (p *pinger) done() bool {
	switch c := p.f.count.n; {
	case c == 0:
		return false
	case p.f.deadline.d > 0:
		return p.st.received >= c
	default:
		return p.st.sent >= c && p.outstanding == 0
	}
}

// send starts the next attempt: a connection (Connect starts the client
// the first time, then waits for the current connection), then a
// PINGREQ, both within -W. Its result comes on p.results.
func (p *pinger) send() {
	p.st.sent++
	p.outstanding++
	seq := p.st.sent
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		wctx, cancel := context.WithTimeout(p.pctx, p.f.wait.d)
		defer cancel()
		var rtt time.Duration
		err := p.client.Connect(wctx)
		switch {
		case err == nil:
			rtt, err = p.client.Ping(wctx)
		case !p.final(err):
			err = &errNoConnection{err}
		}
		select {
		case p.results <- pingResult{seq, rtt, err}:
		case <-p.pctx.Done():
		}
	}()
}

// report counts one attempt's outcome and prints its line.
func (p *pinger) report(r pingResult) {
	if r.err == nil {
		p.st.add(r.rtt)
		if !p.f.quiet {
			fmt.Fprintf(p.s.out, "PINGRESP from %s: seq=%d time=%.3f ms\n", p.cf.server, r.seq, msf(r.rtt))
		}
		return
	}
	if !p.f.quiet {
		fmt.Fprintf(p.s.out, "no PINGRESP for seq=%d: %s\n", r.seq, pingErrText(r.err, p.f.wait.d))
	}
}

// finish prints the summary and returns ping(8)'s status: 0 when a
// PINGRESP came (with -c and -w: -c of them), else 1. The attempts still
// waiting count as lost.
func (p *pinger) finish() int {
	p.cancelPings()
	fmt.Fprintf(p.s.out, "--- %s MQTT ping statistics ---\n%s", p.cf.server, p.st.summary(time.Since(p.began)))
	switch {
	case p.st.received == 0:
		return pingNoAnswer
	case p.f.deadline.d > 0 && p.f.count.n > 0 && p.st.received < p.f.count.n:
		return pingNoAnswer // ping(8): -c and -w, fewer answers than -c
	}
	return pingAnswered
}

// pingErrText says why an attempt got no answer.
func pingErrText(err error, wait time.Duration) string {
	var nc *errNoConnection
	switch {
	case errors.As(err, &nc):
		why := cause(nc.err)
		for _, prefix := range []string{"context deadline exceeded", "context canceled"} {
			why = strings.TrimPrefix(strings.TrimPrefix(why, prefix), "; ")
		}
		if why == "" {
			return fmt.Sprintf("not connected within -W %v", wait)
		}
		return fmt.Sprintf("not connected within -W %v (%s)", wait, why)
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
