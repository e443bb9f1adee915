package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// defaultPubTimeout is --timeout's default.
const defaultPubTimeout = 30 * time.Second

// runPub is "mqttkeep pub": publish -m MSG, or one message per line of
// stdin, and make sure each is acknowledged (QoS 1/2) or written (QoS 0).
func runPub(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("pub")
	var cf connFlags
	cf.register(fs)
	var topic, message string
	var qos qosFlag
	var retain, fromStdin bool
	timeout := durationFlag{d: defaultPubTimeout}
	for _, n := range []string{"t", "topic"} {
		fs.StringVar(&topic, n, "", "topic")
	}
	for _, n := range []string{"m", "message"} {
		fs.StringVar(&message, n, "", "message")
	}
	for _, n := range []string{"q", "qos"} {
		fs.Var(&qos, n, "QoS")
	}
	for _, n := range []string{"r", "retain"} {
		fs.BoolVar(&retain, n, false, "retain")
	}
	for _, n := range []string{"stdin", "l"} {
		fs.BoolVar(&fromStdin, n, false, "one message per line of stdin")
	}
	fs.Var(&timeout, "timeout", "delivery timeout")
	if code, done := parseArgs(fs, "pub", args, s, &cf.password); done {
		return code
	}
	set := flagsSet(fs)
	hasMessage := set["m"] || set["message"]
	switch {
	case topic == "" && !set["t"] && !set["topic"]:
		return usageFail(s, "pub", "missing -t TOPIC (the topic to publish to)", nil)
	case !hasMessage && !fromStdin:
		return usageFail(s, "pub", "missing -m MESSAGE or --stdin (what to publish)", nil)
	case hasMessage && fromStdin:
		return usageFail(s, "pub", "give either -m MESSAGE or --stdin, not both", nil)
	}
	if err := validateTopicName(topic); err != nil {
		return usageFail(s, "pub", "-t: "+errText(err), nil)
	}
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "pub", err.Error(), &cf.password)
	}
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "pub", optionErrText(err), &cf.password)
	}
	stopped := reportConnection(client, "pub", s.err, true)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()

	// withTimeout bounds one message's delivery (connecting included).
	withTimeout := func() (context.Context, context.CancelFunc) {
		if timeout.d == 0 {
			return context.WithCancel(ctx)
		}
		return context.WithTimeoutCause(ctx, timeout.d, fmt.Errorf("not delivered within --timeout %v", timeout.d))
	}
	fail := func(what string, err error) int {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(s.err, "mqttkeep pub: %s: %s\n", what, errText(err))
		return exitFail
	}

	cctx, cancel := withTimeout()
	err = client.Connect(cctx)
	if err != nil {
		err = withCause(cctx, err)
	}
	cancel()
	if err != nil {
		return fail("cannot connect", err)
	}

	d := &deliverer{client: client}
	pubOpts := []mqttkeep.PublishOption{mqttkeep.WithQoS(byte(qos))}
	if retain {
		pubOpts = append(pubOpts, mqttkeep.WithRetain())
	}
	send := func(payload []byte) error {
		mctx, cancel := withTimeout()
		defer cancel()
		err := d.deliver(mctx, func(actx context.Context) error {
			return client.Publish(actx, topic, payload, pubOpts...)
		}, nil)
		return withCause(mctx, err)
	}

	// QoS 0 messages published while reconnecting wait in the library's
	// offline queue, and Close would discard them: wait for it to drain.
	drained := func() int {
		if qos > 0 {
			return exitOK
		}
		dctx, cancel := withTimeout()
		defer cancel()
		for client.Stats().Queued > 0 {
			if !sleepCtx(dctx, 20*time.Millisecond) {
				return fail("QoS 0 messages not sent", fmt.Errorf("%w: %d still queued", context.Cause(dctx), client.Stats().Queued))
			}
		}
		return exitOK
	}

	if !fromStdin {
		if err := send([]byte(message)); err != nil {
			return fail("message not delivered", err)
		}
		return drained()
	}

	// One goroutine reads stdin, so that Ctrl-C is seen while it waits.
	// It ends at the end of stdin (or when run has returned and the next
	// line is read).
	lines := make(chan lineOrErr)
	quit := make(chan struct{})
	defer close(quit)
	go readLines(s.in, lines, quit)
	for lineNo := 0; ; {
		var l lineOrErr
		select {
		case <-ctx.Done():
			return exitOK // nothing pending: every line read so far was delivered
		case err := <-stopped:
			return fail("the broker refused the connection, giving up", err)
		case l = <-lines:
		}
		if l.err == io.EOF {
			return drained()
		}
		if l.err != nil {
			return fail("reading stdin", l.err)
		}
		lineNo++
		if len(l.line) == 0 {
			continue // blank lines are not sent, as with mosquitto_pub -l
		}
		if err := send(l.line); err != nil {
			return fail(fmt.Sprintf("line %d not delivered", lineNo), err)
		}
	}
}

// withCause replaces a bare context error by the context's cause (which
// names --timeout).
func withCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(err, cause) {
		return fmt.Errorf("%w (%s)", cause, errText(err))
	}
	return err
}

type lineOrErr struct {
	line []byte
	err  error // io.EOF at the end of stdin
}

// readLines sends each line of r (without "\n" or "\r\n") on out, then the
// error that ended the input.
func readLines(r io.Reader, out chan<- lineOrErr, quit <-chan struct{}) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			select {
			case out <- lineOrErr{line: line}:
			case <-quit:
				return
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
