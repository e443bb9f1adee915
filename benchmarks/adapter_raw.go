package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// rawContestant is the throughput limit: a hand-written MQTT v5 client
// that writes pre-encoded PUBLISH packets to a TCP socket, one write per
// packet. It does CONNECT/CONNACK and SUBSCRIBE/SUBACK by hand, parses
// inbound packets from a buffered reader, and waits for PUBACK by packet
// ID. No keep alive (it asks for none), no reconnect, no session.
type rawContestant struct{}

func (rawContestant) Name() string { return "raw TCP" }

func (rawContestant) Caps() Caps { return Caps{QoS1: true} }

// rawIDs is how many packet IDs the raw client cycles through.
const rawIDs = 1024

type rawClient struct {
	conn net.Conn
	sub  *Subscription

	wmu     sync.Mutex // one packet at a time
	cTopic  string     // the pre-encoded QoS 0 packet's topic and payload
	cPay    []byte
	cPacket []byte
	scratch []byte // QoS 1 packets are encoded here

	nextID  atomic.Uint32
	waiters [rawIDs + 1]chan struct{} // by packet ID; made once, reused
	idsMu   sync.Mutex

	suback chan struct{}
	done   chan struct{} // closed when the reader ends
	err    error         // why the reader ended; read after done
}

func (rawContestant) Connect(ctx context.Context, cfg ClientConfig) (Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(encodeConnect(cfg.ClientID)); err != nil {
		_ = conn.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	hdr, body, err := readPacket(r, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("raw: reading CONNACK: %w", err)
	}
	if hdr>>4 != 2 || len(body) < 2 || body[1] >= 0x80 {
		_ = conn.Close()
		return nil, fmt.Errorf("raw: CONNACK refused or malformed: %x %x", hdr, body)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &rawClient{conn: conn, sub: cfg.Sub, suback: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read(r)
	if cfg.OnUp != nil {
		cfg.OnUp()
	}
	if s := cfg.Sub; s != nil {
		c.wmu.Lock()
		_, err := conn.Write(encodeSubscribe(1, s.Topic, 0)) // QoS 0: nothing to acknowledge
		c.wmu.Unlock()
		if err == nil {
			select {
			case <-c.suback:
			case <-c.done:
				err = c.err
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *rawClient) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	if qos == 0 {
		c.wmu.Lock()
		if topic != c.cTopic || !bytes.Equal(payload, c.cPay) || c.cPacket == nil {
			c.cTopic, c.cPay = topic, append(c.cPay[:0], payload...)
			c.cPacket = appendPublish(c.cPacket[:0], topic, payload, 0, 0)
		}
		_, err := c.conn.Write(c.cPacket)
		c.wmu.Unlock()
		return err
	}
	if qos != 1 {
		return errors.New("raw: only QoS 0 and 1")
	}
	// IDs cycle over 1..rawIDs: at most 64 publishes are in flight, so an
	// ID is never reused while it is waited on, and each waiter channel is
	// made once.
	id := uint16(c.nextID.Add(1)%rawIDs) + 1
	ch := c.waiter(id)
	c.wmu.Lock()
	c.scratch = appendPublish(c.scratch[:0], topic, payload, 1, id)
	_, err := c.conn.Write(c.scratch)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *rawClient) waiter(id uint16) chan struct{} {
	c.idsMu.Lock()
	defer c.idsMu.Unlock()
	if c.waiters[id] == nil {
		c.waiters[id] = make(chan struct{}, 1)
	}
	return c.waiters[id]
}

func (c *rawClient) Close() {
	c.wmu.Lock()
	_, _ = c.conn.Write([]byte{0xE0, 0}) // DISCONNECT
	c.wmu.Unlock()
	_ = c.conn.Close()
	<-c.done
}

// read handles inbound packets until the connection ends.
func (c *rawClient) read(r *bufio.Reader) {
	defer close(c.done)
	var body []byte
	for {
		hdr, b, err := readPacket(r, body)
		if err != nil {
			c.err = err
			return
		}
		body = b
		switch hdr >> 4 {
		case 3: // PUBLISH
			if c.sub == nil || len(b) < 2 {
				continue
			}
			tl := int(b[0])<<8 | int(b[1])
			i := 2 + tl
			if (hdr>>1)&3 > 0 {
				i += 2 // packet ID; QoS 1 is not acknowledged: we subscribe with QoS 0
			}
			if i >= len(b) {
				continue
			}
			pl, n := uvarint(b[i:])
			i += n + pl // properties
			if i > len(b) {
				continue
			}
			c.sub.Handler(b[i:])
		case 4: // PUBACK
			if len(b) >= 2 {
				id := int(b[0])<<8 | int(b[1])
				if id > rawIDs {
					continue
				}
				c.idsMu.Lock()
				ch := c.waiters[id]
				c.idsMu.Unlock()
				if ch != nil {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		case 9: // SUBACK
			select {
			case c.suback <- struct{}{}:
			default:
			}
		}
	}
}

// readPacket reads one packet into buf (grown as needed).
func readPacket(r *bufio.Reader, buf []byte) (hdr byte, body []byte, err error) {
	hdr, err = r.ReadByte()
	if err != nil {
		return 0, buf, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, buf, errors.New("raw: bad remaining length")
		}
		b, err := r.ReadByte()
		if err != nil {
			return 0, buf, err
		}
		n += int(b&0x7F) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err = io.ReadFull(r, buf)
	return hdr, buf, err
}

func uvarint(b []byte) (v, n int) {
	mult := 1
	for n < len(b) && n < 4 {
		v += int(b[n]&0x7F) * mult
		n++
		if b[n-1]&0x80 == 0 {
			return v, n
		}
		mult *= 128
	}
	return v, n
}

func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

// appendPublish encodes an MQTT v5 PUBLISH without properties.
func appendPublish(b []byte, topic string, payload []byte, qos byte, id uint16) []byte {
	rem := 2 + len(topic) + 1 + len(payload)
	if qos > 0 {
		rem += 2
	}
	b = append(b, 0x30|qos<<1)
	b = appendVarint(b, rem)
	b = appendString(b, topic)
	if qos > 0 {
		b = append(b, byte(id>>8), byte(id))
	}
	b = append(b, 0) // properties length
	return append(b, payload...)
}

// encodeConnect is an MQTT v5 CONNECT: clean start, keep alive 0 (none),
// no properties.
func encodeConnect(clientID string) []byte {
	var v []byte
	v = appendString(v, "MQTT")
	v = append(v, 5, 0x02, 0, 0, 0) // version, flags, keep alive, properties length
	v = appendString(v, clientID)
	return append(appendVarint([]byte{0x10}, len(v)), v...)
}

// encodeSubscribe is an MQTT v5 SUBSCRIBE of one filter.
func encodeSubscribe(id uint16, filter string, qos byte) []byte {
	var v []byte
	v = append(v, byte(id>>8), byte(id), 0)
	v = appendString(v, filter)
	v = append(v, qos)
	return append(appendVarint([]byte{0x82}, len(v)), v...)
}
