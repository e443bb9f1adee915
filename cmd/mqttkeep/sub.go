package main

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// closeTimeout bounds Close (and the last Flush) when a command ends.
const closeTimeout = 5 * time.Second

// subFlags are sub's own flags, mosquitto_sub's.
type subFlags struct {
	topics, filterOut, unsub stringsFlag
	qos                      qosFlag
	count                    countFlag
	verbose, noEOL, pretty   bool
	format                   string
	timeout                  durationFlag
	exitAfterSub             bool
	noRetain, retainedOnly   bool
	removeRetained           bool
	retainAsPublished        bool
	randomFilter             float64
}

func (f *subFlags) register(fs *flag.FlagSet) {
	both(fs, &f.topics, "topic filter", "t", "topic")
	both(fs, &f.filterOut, "filter out", "T", "filter-out")
	both(fs, &f.unsub, "unsubscribe", "U", "unsubscribe")
	both(fs, &f.qos, "QoS", "q", "qos")
	f.count = countFlag{min: 1, max: 1<<31 - 1}
	both(fs, &f.count, "exit after this many messages", "C", "count")
	boolVar(fs, &f.verbose, "print the topic too", "v", "verbose")
	fs.BoolVar(&f.noEOL, "N", false, "no newline after each message")
	fs.BoolVar(&f.pretty, "pretty", false, "indented %j")
	fs.StringVar(&f.format, "F", "", "output format")
	f.timeout = durationFlag{min: time.Millisecond}
	fs.Var(&f.timeout, "W", "exit after this long")
	fs.BoolVar(&f.exitAfterSub, "E", false, "exit once subscribed")
	fs.BoolVar(&f.noRetain, "R", false, "skip retained messages")
	fs.BoolVar(&f.retainedOnly, "retained-only", false, "only retained messages")
	fs.BoolVar(&f.removeRetained, "remove-retained", false, "clear the retained messages received")
	fs.BoolVar(&f.retainAsPublished, "retain-as-published", false, "retain as published")
	f.randomFilter = 100
	fs.Float64Var(&f.randomFilter, "random-filter", 100, "percentage of messages printed")
}

// runSub is "mqttkeep sub": subscribe to one or more filters and print
// every message, as mosquitto_sub does, across reconnects.
func runSub(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("sub")
	var cf connFlags
	cf.register(fs, "sub")
	var f subFlags
	f.register(fs)
	if code, done := parseArgs(fs, "sub", args, s, &cf.password, cf.props.flag()); done {
		return code
	}
	set := flagsSet(fs)
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "sub", err.Error(), &cf.password)
	}
	filters := append([]string(nil), f.topics...)
	if cf.hasURLTopic {
		filters = append(filters, cf.urlTopic)
	}
	pr, err := f.check(filters, set)
	if err != nil {
		return usageFail(s, "sub", err.Error(), &cf.password)
	}
	rep := &reporter{cmd: "sub", w: s.err, secret: cf.password, quiet: cf.quiet}
	o := &subOutput{f: &f, pr: pr, filters: filters, s: s, rep: rep, enough: make(chan struct{})}
	// Messages are acknowledged once printed (or skipped on purpose):
	// those that arrive after -C, --retained-only or -W ended the run stay
	// with the broker, for a session kept with -c.
	opts = append(opts, mqttkeep.WithManualAck(), mqttkeep.WithDefaultHandler(o.handle))
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "sub", optionErrText(err), &cf.password)
	}
	o.client = client
	stopped := reportConnection(client, rep, false)

	var timedOut <-chan time.Time
	if f.timeout.d > 0 {
		t := time.NewTimer(f.timeout.d)
		defer t.Stop()
		timedOut = t.C
	}
	// Subscribe first, then connect: the handlers exist before the first
	// CONNACK (a kept session may deliver at once), and each Subscribe
	// returns when its SUBACK comes, whichever connection carries it.
	var subOpts []mqttkeep.SubscribeOption
	if f.noRetain {
		subOpts = append(subOpts, mqttkeep.WithRetainHandling(mqttkeep.DontSendRetained))
	}
	if f.retainAsPublished {
		subOpts = append(subOpts, mqttkeep.WithRetainAsPublished())
	}
	subOpts = append(subOpts, cf.props.subscribe...)
	type subResult struct {
		filter string
		err    error
	}
	results := make(chan subResult, len(filters))
	var wg sync.WaitGroup
	for _, flt := range filters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- subResult{flt, client.Subscribe(ctx, flt, mqttkeep.QoS(f.qos), o.handle, subOpts...)}
		}()
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if f.removeRetained {
			_ = client.Flush(cctx) // the empty retained messages sent
		}
		_ = client.Close(cctx)
		wg.Wait()
	}()

	connected := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		connected <- client.Connect(ctx)
	}()
	end := func(err error) int {
		if isFinal(err) || refusalStatus(err) != exitFail {
			rep.printf("the broker refused the connection: %s", refusal(err))
		} else {
			rep.printf("%s", cause(err))
		}
		return refusalStatus(err)
	}
	unsubscribed := make(chan error, 1)
	pending := len(filters)
	waitUnsub := f.exitAfterSub && len(f.unsub) > 0
	for conn := false; !conn || pending > 0 || waitUnsub; {
		select {
		case <-ctx.Done():
			return exitOK
		case <-timedOut:
			rep.printf("timed out (-W %v)", f.timeout.d)
			return exitTimedOut
		case err := <-stopped:
			return end(err)
		case err := <-connected:
			if err != nil {
				if ctx.Err() != nil {
					return exitOK
				}
				return end(err)
			}
			conn = true
			if len(f.unsub) > 0 {
				// As mosquitto_sub: UNSUBSCRIBE right after connecting.
				wg.Add(1)
				go func() {
					defer wg.Done()
					unsubscribed <- client.Unsubscribe(ctx, f.unsub...)
				}()
			}
		case err := <-unsubscribed:
			waitUnsub = false
			if err != nil && ctx.Err() == nil && !errors.Is(err, mqttkeep.ErrClosed) {
				rep.printf("unsubscribe: %s", cause(err))
				return exitFail
			}
		case r := <-results:
			pending--
			if r.err != nil {
				if ctx.Err() != nil {
					return exitOK
				}
				if isFinal(r.err) {
					return end(r.err)
				}
				if errors.Is(r.err, mqttkeep.ErrClosed) {
					continue // a final refusal closes the client: reported from stopped
				}
				rep.printf("subscribe to %q: %s", r.filter, cause(r.err))
				return exitFail
			}
			rep.printf("subscribed to %s (QoS %d)", r.filter, f.qos)
		}
	}
	if f.exitAfterSub {
		return exitOK
	}
	select {
	case <-ctx.Done():
	case <-o.enough:
	case <-timedOut:
		rep.printf("timed out (-W %v)", f.timeout.d)
		return exitTimedOut
	case err := <-stopped:
		return end(err)
	}
	return exitOK
}

// check validates sub's own flags and builds the printer.
func (f *subFlags) check(filters []string, set map[string]bool) (*printer, error) {
	if len(filters) == 0 && len(f.unsub) == 0 {
		return nil, usagef("missing -t FILTER (a topic filter to subscribe to) or -U FILTER (one to unsubscribe from)")
	}
	for _, list := range []struct {
		flag  string
		items []string
	}{{"-t", filters}, {"-T", f.filterOut}, {"-U", f.unsub}} {
		for _, flt := range list.items {
			if err := mqttkeep.ValidateTopicFilter(flt); err != nil {
				return nil, usagef("%s %q: %s", list.flag, flt, errText(err))
			}
		}
	}
	if f.noRetain && f.retainedOnly {
		return nil, usagef("-R and --retained-only together make no sense")
	}
	if f.randomFilter < 0.1 || f.randomFilter > 100 {
		return nil, usagef("--random-filter %v: want a percentage from 0.1 to 100", f.randomFilter)
	}
	pr := &printer{verbose: f.verbose, eol: !f.noEOL, pretty: f.pretty}
	if set["F"] {
		if f.format == "" {
			return nil, usagef("-F: empty format")
		}
		toks, err := parseFormat(f.format)
		if err != nil {
			return nil, err
		}
		pr.format = toks
	}
	return pr, nil
}

// subOutput is what sub does with each message: filter, print,
// acknowledge, count. Handlers of different subscriptions run on
// goroutines of their own; mu guards the counts.
type subOutput struct {
	f       *subFlags
	pr      *printer
	filters []string
	s       stdio
	rep     *reporter
	client  *mqttkeep.Client

	mu      sync.Mutex
	done    bool // -C reached or --retained-only ended: print no more
	printed int
	enough  chan struct{}
}

func (o *subOutput) handle(m *mqttkeep.Message) {
	// A message matching several of our filters reaches the handler of
	// each (one PUBLISH naming several subscriptions, or one copy per
	// subscription): it is printed once, from the first filter it matches.
	if m.SubscriptionFilter != "" && firstMatch(o.filters, m.Topic) != m.SubscriptionFilter {
		m.Ack()
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return // not acknowledged: the broker keeps it for the session
	}
	if o.f.retainedOnly && !m.Retain {
		o.finishLocked()
		return
	}
	if (m.Retain && o.f.noRetain) || firstMatch(o.f.filterOut, m.Topic) != "" {
		m.Ack()
		return
	}
	if o.f.removeRetained && m.Retain {
		// As mosquitto_sub: an empty retained message, QoS 1, clears it.
		if _, err := o.client.PublishAsync(context.Background(), m.Topic, nil, mqttkeep.WithQoS(1), mqttkeep.WithRetain()); err != nil {
			o.rep.printf("clearing the retained message of %q: %s", m.Topic, cause(err))
		}
	}
	if o.f.randomFilter >= 100 || rand.Float64()*100 < o.f.randomFilter {
		line, err := o.pr.line(m, time.Now())
		if err != nil {
			o.rep.printf("%s", errText(err))
		}
		if len(line) > 0 {
			_, _ = o.s.data.Write(line)
		}
	}
	m.Ack()
	o.printed++ // mosquitto_sub counts the messages --random-filter skips too
	if o.f.count.n > 0 && o.printed == o.f.count.n {
		o.finishLocked()
	}
}

func (o *subOutput) finishLocked() {
	if !o.done {
		o.done = true
		close(o.enough)
	}
}

// firstMatch returns the first filter that topic matches, "" for none.
func firstMatch(filters []string, topic string) string {
	for _, f := range filters {
		if mqttkeep.MatchTopic(f, topic) {
			return f
		}
	}
	return ""
}
