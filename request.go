package mqttkeep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrNoResponders is [Client.Request]'s error on PUBACK 0x10 (no subscribers).
var ErrNoResponders = errors.New("mqttkeep: no responders")

// requests is the client's request/response state: one response
// subscription per client, and the requests waiting for an answer by
// correlation data.
type requests struct {
	setup   chan struct{} // a one-slot lock held while the response subscription is made
	mu      sync.Mutex
	topic   string // the response topic, once subscribed
	waiting map[string]chan *Message
}

// WithRequestResponseInformation asks for Response Information. Default: off.
func WithRequestResponseInformation() Option {
	return optionFunc(func(c *config) error {
		c.requestResponseInfo = true
		return nil
	})
}

// Request publishes to topic and returns the response: the message on the
// client's response topic with the same correlation data. QoS 1 unless opts say
// otherwise.
func (c *Client) Request(ctx context.Context, topic string, payload []byte, opts ...PublishOption) (*Message, error) {
	m := Message{Topic: topic, Payload: payload, QoS: 1}
	for _, o := range opts {
		o(&m)
	}
	if c.speaks311() {
		return nil, fmt.Errorf("mqttkeep: request to %q: %w", topic, errV311("Response Topic and Correlation Data"))
	}
	respTopic, err := c.responseTopic(ctx)
	if err != nil {
		return nil, fmt.Errorf("mqttkeep: request to %q: %w", topic, err)
	}
	var corr [16]byte
	_, _ = rand.Read(corr[:])
	key := string(corr[:])
	m.ResponseTopic, m.CorrelationData = respTopic, corr[:]
	reply := make(chan *Message, 1)
	r := &c.requests
	r.mu.Lock()
	if r.waiting == nil {
		r.waiting = make(map[string]chan *Message)
	}
	r.waiting[key] = reply
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiting, key)
		r.mu.Unlock()
	}()
	reason, err := c.publishReason(ctx, &m)
	if err != nil {
		return nil, err
	}
	if reason == 0x10 {
		return nil, fmt.Errorf("mqttkeep: request to %q: %w (PUBACK 0x10 no matching subscribers)", topic, ErrNoResponders)
	}
	select {
	case resp := <-reply:
		return resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("mqttkeep: request to %q: no response: %w", topic, ctx.Err())
	case <-c.stopCh:
		return nil, c.stopErr()
	}
}

// Respond publishes payload to req's Response Topic with its Correlation Data,
// or returns [ErrInvalidArgument] when req has none.
func (c *Client) Respond(ctx context.Context, req *Message, payload []byte, opts ...PublishOption) error {
	if req.ResponseTopic == "" {
		return fmt.Errorf("%w: the message on %q has no Response Topic: not a request", ErrInvalidArgument, req.Topic)
	}
	m := Message{Topic: req.ResponseTopic, Payload: payload}
	for _, o := range opts {
		o(&m)
	}
	m.CorrelationData = req.CorrelationData
	return c.PublishMessage(ctx, &m)
}

// responseTopic returns the client's response topic, subscribing to it
// the first time.
func (c *Client) responseTopic(ctx context.Context) (string, error) {
	r := &c.requests
	select {
	case r.setup <- struct{}{}:
		defer func() { <-r.setup }()
	case <-ctx.Done():
		return "", ctx.Err()
	}
	r.mu.Lock()
	topic := r.topic
	r.mu.Unlock()
	if topic != "" {
		return topic, nil
	}
	prefix := "mqttkeep/responses/"
	if caps, ok := c.Capabilities(); ok && caps.ResponseInformation != "" {
		prefix = strings.TrimSuffix(caps.ResponseInformation, "/") + "/"
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	topic = prefix + hex.EncodeToString(tok[:])
	if err := validateTopicName(topic); err != nil {
		return "", fmt.Errorf("response topic: %w", err)
	}
	if err := c.Subscribe(ctx, topic, 1, c.responseReceived); err != nil {
		return "", fmt.Errorf("subscribing to the response topic: %w", err)
	}
	r.mu.Lock()
	r.topic = topic
	r.mu.Unlock()
	return topic, nil
}

// responseReceived hands a response to the Request waiting for it; a
// response nobody waits for (late, or duplicated) is dropped.
func (c *Client) responseReceived(m *Message) {
	r := &c.requests
	r.mu.Lock()
	reply, ok := r.waiting[string(m.CorrelationData)]
	if ok {
		delete(r.waiting, string(m.CorrelationData))
	}
	r.mu.Unlock()
	if !ok {
		c.cfg.logger.Debug("mqttkeep: response without a waiting request", "topic", m.Topic)
		return
	}
	reply <- m.Clone()
}

// publishReason is PublishMessage that also returns the broker's reason
// code for a QoS 1/2 message.
func (c *Client) publishReason(ctx context.Context, m *Message) (ReasonCode, error) {
	res, err := c.PublishAsync(ctx, m.Topic, m.Payload, func(x *Message) { *x = *m })
	if err != nil {
		return 0, err
	}
	if err := res.Wait(ctx); err != nil {
		return res.ReasonCode(), fmt.Errorf("mqttkeep: publish to %q: %w", m.Topic, err)
	}
	return res.ReasonCode(), nil
}
