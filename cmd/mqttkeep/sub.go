package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mqttkeep/mqttkeep"
)

// closeTimeout bounds Close when a command ends.
const closeTimeout = 5 * time.Second

// runSub is "mqttkeep sub": subscribe to one or more filters and print
// every message until Ctrl-C (or -C messages).
func runSub(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("sub")
	var cf connFlags
	cf.register(fs)
	var filters stringsFlag
	var qos qosFlag
	var format string
	var count int
	for _, n := range []string{"t", "topic"} {
		fs.Var(&filters, n, "topic filter")
	}
	for _, n := range []string{"q", "qos"} {
		fs.Var(&qos, n, "QoS")
	}
	fs.StringVar(&format, "format", "text", "output format")
	fs.Bool("v", false, "accepted for mosquitto_sub habits: the topic is always printed")
	for _, n := range []string{"C", "count"} {
		fs.IntVar(&count, n, 0, "exit after this many messages")
	}
	if code, done := parseArgs(fs, "sub", args, s, &cf.password); done {
		return code
	}
	if len(filters) == 0 {
		return usageFail(s, "sub", "missing -t FILTER (the topic filter to subscribe to)", nil)
	}
	for _, f := range filters {
		if err := validateFilter(f); err != nil {
			return usageFail(s, "sub", "-t: "+errText(err), nil)
		}
	}
	if format != "text" && format != "json" {
		return usageFail(s, "sub", fmt.Sprintf("--format %q: want text or json", format), nil)
	}
	if count < 0 {
		return usageFail(s, "sub", "-C: want a count of 0 (no limit) or more", nil)
	}
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "sub", err.Error(), &cf.password)
	}
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "sub", optionErrText(err), &cf.password)
	}
	stopped := reportConnection(client, "sub", s.err, false)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()

	if err := client.Connect(ctx); err != nil {
		if ctx.Err() != nil {
			return exitOK // interrupted before the first connection
		}
		fmt.Fprintf(s.err, "mqttkeep sub: cannot connect: %s\n", errText(err))
		return exitFail
	}

	// Each subscription's handler runs on a goroutine of its own: the
	// state below is guarded by mu.
	var mu sync.Mutex
	enough := make(chan struct{})
	printed := 0
	handler := func(m *mqttkeep.Message) {
		// A message matching several of our filters reaches the handler
		// of each (one PUBLISH naming several subscriptions, or one copy
		// per subscription from brokers like Mosquitto): print it from the
		// first of our filters that matches it only.
		if firstMatch(filters, m.Topic) != m.SubscriptionFilter {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if count > 0 && printed >= count {
			return
		}
		printMessage(s, format, m)
		printed++
		if count > 0 && printed == count {
			close(enough)
		}
	}
	for _, f := range filters {
		if err := subscribe(ctx, client, f, byte(qos), handler); err != nil {
			if ctx.Err() != nil {
				return exitOK
			}
			fmt.Fprintf(s.err, "mqttkeep sub: subscribe to %q: %s\n", f, errText(err))
			return exitFail
		}
		fmt.Fprintf(s.err, "mqttkeep sub: subscribed to %s (QoS %d)\n", f, qos)
	}

	select {
	case <-ctx.Done():
	case <-enough:
	case err := <-stopped:
		fmt.Fprintf(s.err, "mqttkeep sub: the broker refused the connection, giving up: %s\n", errText(err))
		return exitFail
	}
	return exitOK
}

// firstMatch returns the first filter that topic matches.
func firstMatch(filters []string, topic string) string {
	for _, f := range filters {
		if mqttkeep.MatchTopic(f, topic) {
			return f
		}
	}
	return ""
}

// subscribe subscribes, waiting for the connection and trying again when
// the connection drops before the SUBACK. A refusal by the broker is
// returned.
func subscribe(ctx context.Context, c *mqttkeep.Client, filter string, qos byte, h mqttkeep.MessageHandler) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Subscribe(actx, filter, qos, h)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		var rc *mqttkeep.ReasonCodeError
		if errors.Is(err, mqttkeep.ErrClosed) || errors.Is(err, mqttkeep.ErrInvalidTopic) ||
			isFinal(err) || (errors.As(err, &rc) && rc.Packet == "SUBACK") {
			return err
		}
		if !sleepCtx(ctx, retryPause) {
			return ctx.Err()
		}
		if err := c.AwaitConnected(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// jsonMessage is one line of "sub --format json".
type jsonMessage struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	// PayloadBase64 is set when the payload is not valid UTF-8 and Payload
	// holds it in standard base64.
	PayloadBase64 bool           `json:"payload_base64,omitempty"`
	QoS           byte           `json:"qos"`
	Retain        bool           `json:"retain"`
	Duplicate     bool           `json:"dup,omitempty"`
	Properties    jsonProperties `json:"properties"`
}

type jsonProperties struct {
	ContentType     string         `json:"content_type,omitempty"`
	ResponseTopic   string         `json:"response_topic,omitempty"`
	CorrelationData []byte         `json:"correlation_data,omitempty"` // base64
	MessageExpiry   int64          `json:"message_expiry,omitempty"`   // seconds
	PayloadUTF8     bool           `json:"payload_format_utf8,omitempty"`
	UserProperties  []jsonUserProp `json:"user_properties,omitempty"`
}

type jsonUserProp struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// printMessage writes one message to stdout: "topic payload" or a JSON
// object, one line each.
func printMessage(s stdio, format string, m *mqttkeep.Message) {
	if format == "text" {
		line := make([]byte, 0, len(m.Topic)+1+len(m.Payload)+1)
		line = append(append(append(line, m.Topic...), ' '), m.Payload...)
		_, _ = s.out.Write(append(line, '\n'))
		return
	}
	j := jsonMessage{Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Duplicate: m.Duplicate}
	if utf8.Valid(m.Payload) {
		j.Payload = string(m.Payload)
	} else {
		j.Payload, j.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload), true
	}
	j.Properties = jsonProperties{
		ContentType:     m.ContentType,
		ResponseTopic:   m.ResponseTopic,
		CorrelationData: m.CorrelationData,
		MessageExpiry:   int64(m.MessageExpiry / time.Second),
		PayloadUTF8:     m.PayloadUTF8,
	}
	for _, u := range m.UserProperties {
		j.Properties.UserProperties = append(j.Properties.UserProperties, jsonUserProp{u.Key, u.Value})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<" stays "<": this is not for a web page
	if err := enc.Encode(j); err != nil {
		// Cannot happen: only strings, numbers, bools and byte slices.
		fmt.Fprintf(s.err, "mqttkeep sub: %v\n", err)
		return
	}
	_, _ = s.out.Write(b.Bytes()) // Encode ended it with "\n"
}
