package mqttkeep

import (
	"context"
	"errors"
	"fmt"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session"
)

// Publish sends payload to topic; opts set QoS (default 0), retain and
// MQTT v5 properties.
//
// While connected, Publish returns when the message was written (QoS 0) or
// acknowledged with PUBACK (QoS 1) or PUBCOMP (QoS 2). While the client is
// reconnecting, the message is queued (bounded by [WithQueueLimits]; a full
// queue returns [ErrQueueFull] at once) and sent in order after the
// reconnect, once subscriptions are restored: a QoS 0 Publish returns nil
// as soon as the message is queued, a QoS 1/2 Publish keeps waiting for
// the acknowledgement. A QoS 1/2 message in flight when the connection
// dropped is re-sent after the reconnect (by the resumed session, or again
// by Publish when the broker lost the session), so Publish returns nil only
// for a message the broker acknowledged. When ctx ends first, Publish
// returns ctx's error; a message that was already written may still be
// delivered. A bad topic or QoS is reported before anything is sent
// ([ErrInvalidTopic], [ErrInvalidQoS]).
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error {
	m := Message{Topic: topic, Payload: payload}
	for _, o := range opts {
		o(&m)
	}
	return c.PublishMessage(ctx, &m)
}

// PublishMessage is Publish with every field given in m. m is not
// modified; for a queued QoS 0 message its payload is copied.
func (c *Client) PublishMessage(ctx context.Context, m *Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	for {
		l, epoch, o, err := c.publishTarget(m)
		if err != nil {
			return err
		}
		if o != nil && m.QoS == 0 {
			return nil // queued; sent after the reconnect
		}
		var release func() // set while we hold a queue turn
		if o != nil {
			l, release, err = c.awaitTurn(ctx, o)
			if err != nil {
				return err
			}
			// The session may have been lost (and epoch closed) while
			// the message waited: what counts is the session from now.
			c.mu.Lock()
			epoch = c.epoch
			c.mu.Unlock()
		}
		ret, err := c.send(ctx, l, m)
		if release != nil {
			release()
		}
		switch {
		case err == nil:
		case errors.Is(err, session.ErrNoConnection) || errors.Is(err, errLinkDown):
			continue // the connection just went: queue it
		default:
			return fmt.Errorf("mqttkeep: publish to %q: %w", m.Topic, err)
		}
		if ret == nil {
			return nil // QoS 0, written
		}
		select {
		case resp := <-ret:
			return ackResult(m, resp)
		case <-epoch:
			// The broker lost the session across a reconnect, and paho's
			// session state dropped the message with it: send it again.
			continue
		case <-ctx.Done():
			return fmt.Errorf("mqttkeep: publish to %q: %w (it may still be delivered)", m.Topic, ctx.Err())
		}
	}
}

// errLinkDown reports a QoS 0 write on a connection that just failed.
var errLinkDown = errors.New("mqttkeep: connection down")

// publishTarget returns the live connection, or queues m when the client is
// between connections (o is then its queue entry), or says why neither is
// possible. epoch is closed when a reconnect finds the session gone.
func (c *Client) publishTarget(m *Message) (l *link, epoch <-chan struct{}, o *outgoing, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == StateClosed:
		return nil, nil, nil, ErrClosed
	case c.finalErr != nil:
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrNotConnected, c.finalErr)
	case c.state == StateDisconnected:
		return nil, nil, nil, fmt.Errorf("%w: Connect has not been called", ErrNotConnected)
	}
	if c.link != nil && !c.link.isLost() {
		return c.link, c.epoch, nil, nil
	}
	if c.cfg.queueMessages == 0 {
		return nil, nil, nil, ErrNotConnected
	}
	if m.QoS == 0 {
		cp := *m
		cp.Payload = append([]byte(nil), m.Payload...)
		m = &cp
	}
	o = &outgoing{m: m, size: messageSize(m)}
	if m.QoS > 0 {
		o.turn, o.written = make(chan *link, 1), make(chan struct{})
	}
	// Pushed under c.mu, so the supervisor, which publishes the new link
	// under c.mu only once the queue is empty, cannot miss it.
	if !c.queue.push(o) {
		n, b := c.queue.len()
		return nil, nil, nil, fmt.Errorf("%w: %d messages, %d bytes queued", ErrQueueFull, n, b)
	}
	return nil, c.epoch, o, nil
}

// awaitTurn waits until the supervisor gives queued QoS 1/2 message o its
// turn on the new connection. release must be called once the PUBLISH was
// handed to the session and written.
func (c *Client) awaitTurn(ctx context.Context, o *outgoing) (*link, func(), error) {
	var why error
	select {
	case l := <-o.turn:
		if l == nil {
			return nil, nil, c.stopErr()
		}
		return l, func() { close(o.written) }, nil
	case <-ctx.Done():
		why = fmt.Errorf("mqttkeep: publish to %q: %w (not sent)", o.m.Topic, ctx.Err())
	case <-c.stopCh:
		why = c.stopErr()
	}
	if c.queue.remove(o) {
		return nil, nil, why
	}
	// Already popped: the turn is on its way; take it and pass it on.
	if l := <-o.turn; l != nil {
		close(o.written)
	}
	return nil, nil, why
}

// stopErr is why a queued message will never be sent.
func (c *Client) stopErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finalErr != nil {
		return fmt.Errorf("%w: %w", ErrNotConnected, c.finalErr)
	}
	return ErrClosed
}

// send writes m on l. For QoS 1/2 the message first enters the session
// state (waiting for a slot in the broker's Receive Maximum window), and
// the returned channel receives the final acknowledgement.
func (c *Client) send(ctx context.Context, l *link, m *Message) (chan packets.ControlPacket, error) {
	pb := m.packet()
	if err := l.checkServerLimits(m, pb); err != nil {
		return nil, err
	}
	if m.QoS == 0 {
		if _, err := pb.WriteTo(l.conn); err != nil {
			return nil, fmt.Errorf("%w: %w", errLinkDown, err)
		}
		return nil, nil
	}
	ret := make(chan packets.ControlPacket, 1)
	if err := c.session.AddToSession(ctx, pb, ret); err != nil {
		return nil, err
	}
	// From here the message is in the session: a failed write is re-sent
	// by the session on the next connection, so the error is not ours.
	_, _ = pb.WriteTo(l.conn)
	return ret, nil
}

// ackResult interprets the packet that completed a QoS 1/2 publish.
func ackResult(m *Message, resp packets.ControlPacket) error {
	var code byte
	var props *packets.Properties
	packet := "PUBACK"
	switch p := resp.Content.(type) {
	case nil:
		return ErrClosed // the session was closed with the message in flight
	case *packets.Puback:
		code, props = p.ReasonCode, p.Properties
	case *packets.Pubcomp:
		code, props, packet = p.ReasonCode, p.Properties, "PUBCOMP"
	case *packets.Pubrec:
		code, props, packet = p.ReasonCode, p.Properties, "PUBREC"
	default:
		return fmt.Errorf("mqttkeep: publish to %q: unexpected packet type %d", m.Topic, resp.Type)
	}
	if code < 0x80 {
		return nil
	}
	rc := &ReasonCodeError{Packet: packet, Code: code}
	if props != nil {
		rc.Reason = props.ReasonString
	}
	return fmt.Errorf("mqttkeep: publish to %q: %w", m.Topic, rc)
}

// flush sends the queued messages on l, oldest first, before l is
// published to callers. It stops early when l is lost; what is left stays
// queued for the next connection.
func (c *Client) flush(l *link) {
	for !l.isLost() {
		o := c.queue.pop()
		if o == nil {
			return
		}
		if o.m.QoS == 0 {
			_, err := c.send(c.ctx, l, o.m)
			switch {
			case err == nil:
			case errors.Is(err, errLinkDown):
				c.queue.pushFront(o) // for the next connection
				return
			default:
				// This broker refuses it (QoS, retain or size limits from
				// its CONNACK); its Publish already returned.
				c.stats.messagesDiscarded.Add(1)
				c.cfg.logger.Warn("mqttkeep: queued QoS 0 message discarded", "topic", o.m.Topic, "err", err)
			}
			continue
		}
		o.turn <- l // buffered: never blocks
		select {
		case <-o.written:
		case <-l.lost:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// discardQueue empties the queue when the client stops for good: waiting
// QoS 1/2 callers are released with the reason, QoS 0 messages counted.
func (c *Client) discardQueue() {
	for _, o := range c.queue.drain() {
		if o.turn != nil {
			o.turn <- nil
			continue
		}
		c.stats.messagesDiscarded.Add(1)
	}
	if n := c.stats.messagesDiscarded.Load(); n > 0 {
		c.cfg.logger.Warn("mqttkeep: queued QoS 0 messages discarded", "count", n)
	}
}
