package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// defaultPubTimeout is --timeout's default.
const defaultPubTimeout = 30 * time.Second

// maxPayload is the largest payload MQTT can carry in one PUBLISH
// (268,435,455 bytes of remaining length, less a header).
const maxPayload = 268435455 - 65535 - 16

// pubFlags are pub's own flags, mosquitto_pub's, plus --timeout.
type pubFlags struct {
	topic, message, file    string
	lines, wholeStdin, null bool
	qos                     qosFlag
	retain                  bool
	repeat                  countFlag
	repeatDelay             durationFlag
	maxInflight             countFlag
	timeout                 durationFlag
}

func (f *pubFlags) register(fs *flag.FlagSet) {
	stringVar(fs, &f.topic, "topic", "t", "topic")
	stringVar(fs, &f.message, "message", "m", "message")
	stringVar(fs, &f.file, "file", "f", "file")
	boolVar(fs, &f.lines, "one message per line of stdin", "l", "stdin-line")
	boolVar(fs, &f.wholeStdin, "stdin as one message", "s", "stdin-file")
	boolVar(fs, &f.null, "empty message", "n", "null-message")
	both(fs, &f.qos, "QoS", "q", "qos")
	boolVar(fs, &f.retain, "retain", "r", "retain")
	f.repeat = countFlag{n: 1, min: 1, max: 1<<31 - 1}
	fs.Var(&f.repeat, "repeat", "publish this many times")
	f.repeatDelay = durationFlag{fractional: true, max: 24 * time.Hour}
	fs.Var(&f.repeatDelay, "repeat-delay", "pause between repeats")
	f.maxInflight = countFlag{min: 1, max: 65535}
	fs.Var(&f.maxInflight, "M", "maximum QoS 1/2 messages in flight")
	f.timeout = durationFlag{d: defaultPubTimeout}
	fs.Var(&f.timeout, "timeout", "delivery timeout")
}

// runPub is "mqttkeep pub": publish -m, -f, -s or -n (--repeat times), or
// one message per line of stdin (-l), and make sure each is acknowledged
// (QoS 1/2) or has reached the broker (QoS 0).
func runPub(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("pub")
	var cf connFlags
	cf.register(fs, "pub")
	var f pubFlags
	f.register(fs)
	if code, done := parseArgs(fs, "pub", args, s, &cf.password, cf.props.flag()); done {
		return code
	}
	set := flagsSet(fs)
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "pub", err.Error(), &cf.password)
	}
	topic, payload, err := f.check(set, &cf, s.in)
	if err != nil {
		return usageFail(s, "pub", err.Error(), &cf.password)
	}
	if set["M"] {
		opts = append(opts, mqttkeep.WithInflightLimits(f.maxInflight.n, mqttkeep.DefaultInflightBytes))
	}
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "pub", optionErrText(err), &cf.password)
	}
	rep := &reporter{cmd: "pub", w: s.err, secret: cf.password, quiet: cf.quiet, failFast: !set["timeout"]}
	stopped := reportConnection(client, rep, true)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()

	if code, ok := connectPub(ctx, client, rep, set["timeout"], f.timeout.d); !ok {
		return code
	}
	pubOpts := append([]mqttkeep.PublishOption{mqttkeep.WithQoS(mqttkeep.QoS(f.qos))}, cf.props.publish...)
	if f.retain {
		pubOpts = append(pubOpts, mqttkeep.WithRetain())
	}
	snd := &sender{client: client, topic: topic, opts: pubOpts, timeout: f.timeout.d}
	fail := func(err error) int {
		if errors.Is(err, errInterrupted) {
			if n := snd.undelivered(interruptGrace); n > 0 {
				rep.printf("interrupted with %s not yet delivered", plural(n, "message", "messages"))
				return exitFail
			}
			return exitOK
		}
		rep.printf("%s", cause(err))
		return refusalStatus(err)
	}
	if f.lines {
		err = snd.lines(ctx, s.in, stopped)
	} else {
		err = snd.repeated(ctx, payload, f.repeat.n, f.repeatDelay.d)
	}
	if err == nil {
		err = snd.finish(ctx)
	}
	if err != nil {
		return fail(err)
	}
	// Everything is acknowledged: a normal DISCONNECT (no will), the
	// session ended.
	dctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = client.Drain(dctx)
	return exitOK
}

// check validates pub's own flags and reads the message (-f, -s) before
// anything is sent, as mosquitto_pub does.
func (f *pubFlags) check(set map[string]bool, cf *connFlags, stdin io.Reader) (topic string, payload []byte, err error) {
	modes := 0
	for _, given := range []bool{anySet(set, "m", "message"), anySet(set, "f", "file"), f.lines, f.wholeStdin, f.null} {
		if given {
			modes++
		}
	}
	topic = f.topic
	switch {
	case anySet(set, "t", "topic") && cf.hasURLTopic:
		return "", nil, usagef("give the topic either in the -L URL or with -t, not both")
	case cf.hasURLTopic:
		topic = cf.urlTopic
	case !anySet(set, "t", "topic"):
		return "", nil, usagef("missing -t TOPIC (the topic to publish to)")
	}
	if err := mqttkeep.ValidateTopicName(topic); err != nil {
		return "", nil, usagef("-t %q: %s", topic, errText(err))
	}
	switch {
	case modes == 0:
		return "", nil, usagef("missing the message: -m MESSAGE, -f FILE, -s (stdin), -l (stdin, one per line) or -n (empty)")
	case modes > 1:
		return "", nil, usagef("give one of -m, -f, -s, -l and -n: only one kind of message can be sent at once")
	case f.lines && (set["repeat"] || set["repeat-delay"]):
		return "", nil, usagef("--repeat and --repeat-delay apply to -m, -f, -s and -n, not to -l")
	case set["repeat-delay"] && !set["repeat"]:
		return "", nil, usagef("--repeat-delay needs --repeat")
	}
	switch {
	case anySet(set, "m", "message"):
		payload = []byte(f.message)
	case anySet(set, "f", "file"):
		if payload, err = readLimited(fileOpener(f.file)); err != nil {
			return "", nil, usagef("-f: %v", err)
		}
	case f.wholeStdin:
		if payload, err = readLimited(func() (io.ReadCloser, error) { return io.NopCloser(stdin), nil }); err != nil {
			return "", nil, usagef("-s: reading stdin: %v", err)
		}
	}
	return topic, payload, nil
}

func fileOpener(name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(name) }
}

// readLimited reads a whole message, refusing one larger than MQTT allows.
func readLimited(open func() (io.ReadCloser, error)) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxPayload+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("larger than the %d bytes an MQTT message can carry", maxPayload)
	}
	return data, nil
}

// connectPub makes the first connection. Without --timeout pub fails at
// the first failed attempt (a closed port, a refusing broker), as
// mosquitto_pub does; with it, it keeps trying for that long (0: for
// ever). ok is false when pub must exit with code.
func connectPub(ctx context.Context, client *mqttkeep.Client, rep *reporter, wait bool, timeout time.Duration) (code int, ok bool) {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var last error // the last failed attempt's error
	unregister := client.OnReconnecting(func(e mqttkeep.ReconnectingEvent) {
		mu.Lock()
		last = e.Err
		mu.Unlock()
		if !wait {
			cancel(e.Err)
		}
	})
	defer unregister()
	if wait && timeout > 0 {
		tctx, tcancel := context.WithTimeoutCause(cctx, timeout, fmt.Errorf("not connected within --timeout %v", timeout))
		defer tcancel()
		cctx = tctx
	}
	err := client.Connect(cctx)
	if err == nil {
		return exitOK, true
	}
	if ctx.Err() != nil {
		rep.printf("interrupted before the first connection")
		return exitFail, false
	}
	if isFinal(err) {
		rep.printf("the broker refused the connection: %s", refusal(err))
		return refusalStatus(err), false
	}
	mu.Lock()
	lastErr := last
	mu.Unlock()
	switch c := context.Cause(cctx); {
	case c != nil && wait && lastErr != nil:
		err = fmt.Errorf("%w; last attempt: %s", c, cause(lastErr))
	case c != nil && !errors.Is(c, context.Canceled):
		err = c
	}
	rep.printf("cannot connect: %s", cause(err))
	return refusalStatus(err), false
}

// errInterrupted ends a publishing loop on Ctrl-C.
var errInterrupted = errors.New("interrupted")

// sender publishes with PublishAsync, in order, and follows each message
// until it completed: acknowledged (QoS 1/2) or written (QoS 0, confirmed
// by the Flush at the end), within --timeout of its acceptance.
type sender struct {
	client  *mqttkeep.Client
	topic   string
	opts    []mqttkeep.PublishOption
	timeout time.Duration
	sent    int
	pending []pendingMsg
}

type pendingMsg struct {
	res  *mqttkeep.PublishResult
	at   time.Time
	what string
}

// send accepts one message. A full queue waits for the oldest message.
func (s *sender) send(ctx context.Context, payload []byte, what string) error {
	if err := s.reap(); err != nil {
		return err
	}
	for {
		res, err := s.client.PublishAsync(ctx, s.topic, payload, s.opts...)
		switch {
		case err == nil:
			s.sent++
			s.pending = append(s.pending, pendingMsg{res: res, at: time.Now(), what: what})
			return nil
		case ctx.Err() != nil:
			return errInterrupted
		case errors.Is(err, mqttkeep.ErrQueueFull) && len(s.pending) > 0:
			if err := s.waitOldest(ctx); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s not sent: %w", what, err)
		}
	}
}

// reap drops the completed messages at the front, returning the first
// failure.
func (s *sender) reap() error {
	for len(s.pending) > 0 {
		select {
		case <-s.pending[0].res.Done():
		default:
			return nil
		}
		p := s.pending[0]
		s.pending = s.pending[1:]
		if err := p.res.Err(); err != nil {
			return fmt.Errorf("%s not delivered: %w", p.what, err)
		}
	}
	return nil
}

// waitOldest waits for the oldest pending message.
func (s *sender) waitOldest(ctx context.Context) error {
	p := s.pending[0]
	wctx, cancel := context.WithCancel(ctx)
	if s.timeout > 0 {
		wctx, cancel = context.WithDeadline(ctx, p.at.Add(s.timeout))
	}
	defer cancel()
	err := p.res.Wait(wctx)
	switch {
	case err == nil:
		s.pending = s.pending[1:]
		return nil
	case ctx.Err() != nil:
		return errInterrupted
	case wctx.Err() != nil:
		return fmt.Errorf("%s not delivered within --timeout %v", p.what, s.timeout)
	}
	s.pending = s.pending[1:]
	return fmt.Errorf("%s not delivered: %w", p.what, err)
}

// interruptGrace is how long Ctrl-C waits for the messages already sent
// to be acknowledged.
const interruptGrace = 2 * time.Second

// undelivered counts the accepted messages not delivered within grace.
func (s *sender) undelivered(grace time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for len(s.pending) > 0 {
		if err := s.pending[0].res.Wait(ctx); err != nil {
			break
		}
		s.pending = s.pending[1:]
	}
	return len(s.pending)
}

// finish waits for every pending message, then makes sure the QoS 0 ones
// reached the broker (Flush: a PINGREQ behind them answered).
func (s *sender) finish(ctx context.Context) error {
	for len(s.pending) > 0 {
		if err := s.waitOldest(ctx); err != nil {
			return err
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	if s.timeout > 0 {
		fctx, cancel = context.WithTimeout(ctx, s.timeout)
	}
	defer cancel()
	if err := s.client.Flush(fctx); err != nil {
		switch {
		case ctx.Err() != nil:
			return errInterrupted
		case fctx.Err() != nil:
			return fmt.Errorf("the broker did not confirm the QoS 0 messages within --timeout %v", s.timeout)
		}
		return fmt.Errorf("the broker did not confirm the QoS 0 messages (they may be lost): %w", err)
	}
	return nil
}

// repeated publishes payload n times; with a delay, each repetition
// waits for the previous one to complete and then for the delay, as
// mosquitto_pub does.
func (s *sender) repeated(ctx context.Context, payload []byte, n int, delay time.Duration) error {
	for i := 1; i <= n; i++ {
		what := "the message"
		if n > 1 {
			what = fmt.Sprintf("message %d of %d", i, n)
		}
		if err := s.send(ctx, payload, what); err != nil {
			return err
		}
		if delay > 0 && i < n {
			if err := s.waitOldest(ctx); err != nil {
				return err
			}
			if !sleepCtx(ctx, delay) {
				return errInterrupted
			}
		}
	}
	return nil
}

// lines publishes each line of in (without its "\n"; an empty line is an
// empty message, a last line without "\n" is sent too), as mosquitto_pub
// -l does. A final refusal on stopped ends it.
func (s *sender) lines(ctx context.Context, in io.Reader, stopped <-chan error) error {
	// One goroutine reads stdin, so that Ctrl-C is seen while it waits.
	// It ends at the end of stdin (or when run has returned and the next
	// line is read).
	lines := make(chan lineOrErr)
	quit := make(chan struct{})
	defer close(quit)
	go readLines(in, lines, quit)
	for lineNo := 1; ; {
		// While waiting for a line, follow the oldest message too: its
		// --timeout runs from its acceptance, not from the next line.
		var done <-chan struct{}
		var expired <-chan time.Time
		var timer *time.Timer
		if len(s.pending) > 0 {
			p := s.pending[0]
			done = p.res.Done()
			if s.timeout > 0 {
				timer = time.NewTimer(time.Until(p.at.Add(s.timeout)))
				expired = timer.C
			}
		}
		var l lineOrErr
		var got bool
		var err error
		select {
		case <-ctx.Done():
			err = errInterrupted
		case e := <-stopped:
			err = fmt.Errorf("the broker refused the connection, giving up: %w", e)
		case <-done:
			err = s.reap()
		case <-expired:
			err = fmt.Errorf("%s not delivered within --timeout %v", s.pending[0].what, s.timeout)
		case l = <-lines:
			got = true
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil || !got {
			if err != nil {
				return err
			}
			continue
		}
		if l.err == io.EOF {
			return nil
		}
		if l.err != nil {
			return fmt.Errorf("reading stdin: %w", l.err)
		}
		if err := s.send(ctx, l.line, fmt.Sprintf("line %d", lineNo)); err != nil {
			return err
		}
		lineNo++
	}
}

type lineOrErr struct {
	line []byte
	err  error // io.EOF at the end of stdin
}

// readLines sends each line of r (without "\n") on out, then the error
// that ended the input.
func readLines(r io.Reader, out chan<- lineOrErr, quit <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if len(line) > maxPayload {
				err = fmt.Errorf("a line of %d bytes: longer than an MQTT message can carry", len(line))
			} else {
				select {
				case out <- lineOrErr{line: line}:
				case <-quit:
					return
				}
			}
		}
		if err != nil {
			select {
			case out <- lineOrErr{err: err}:
			case <-quit:
			}
			return
		}
	}
}
