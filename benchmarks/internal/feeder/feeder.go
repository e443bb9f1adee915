// Package feeder is a minimal MQTT server on 127.0.0.1 that sends one
// client as many QoS 0 messages as it can read, for the routing benchmark.
// It answers CONNECT (MQTT 3.1.1 and 5), SUBSCRIBE (granting every filter
// of the packet QoS 0), PINGREQ and DISCONNECT, and writes pre-encoded
// PUBLISH packets in large batches when asked (Feed), so that its own
// cost per message is a copy and its share of the writes. It is not a
// broker: it matches nothing and sends what it is told to.
//
// With WithoutSubscriptionIDs it announces Subscription Identifier
// Available = 0 in its CONNACK (an MQTT v5 client then sends none and
// routes every message by its topic); otherwise it remembers the
// Subscription Identifier of each filter and puts it in the messages it
// feeds for that filter, as a broker does.
package feeder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// Option configures Start.
type Option func(*Server)

// WithoutSubscriptionIDs makes the server announce that it does not
// support Subscription Identifiers, and send none.
func WithoutSubscriptionIDs() Option { return func(s *Server) { s.noIDs = true } }

// Server is the feeder. Its methods are safe for concurrent use.
type Server struct {
	ln    net.Listener
	noIDs bool

	mu     sync.Mutex
	conns  map[*conn]struct{}
	last   *conn // the latest connection that sent CONNECT
	closed bool
	wg     sync.WaitGroup
}

type conn struct {
	nc      net.Conn
	version byte
	wmu     sync.Mutex // one writer at a time
	mu      sync.Mutex
	ids     map[string]int // filter → Subscription Identifier
	filters int            // filters granted
}

// Start listens on 127.0.0.1 (random port).
func Start(opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("feeder: listen: %w", err)
	}
	s := &Server{ln: ln, conns: make(map[*conn]struct{})}
	for _, o := range opts {
		o(s)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close closes the listener and every connection and waits for the
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

// Filters returns how many filters the latest connection has subscribed.
func (s *Server) Filters() int {
	s.mu.Lock()
	c := s.last
	s.mu.Unlock()
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.filters
}

// Feed writes n QoS 0 PUBLISH packets to topic on the latest connection,
// each carrying the Subscription Identifier the client gave filter (if
// any, and unless WithoutSubscriptionIDs). It returns when all are written
// to the socket, or with the write's or ctx's error.
func (s *Server) Feed(ctx context.Context, filter, topic string, payload []byte, n int) error {
	return s.FeedPaced(ctx, filter, topic, payload, n, nil)
}

// FeedPaced is Feed calling gate(sent), if not nil, before each batch of
// up to 512 packets; an error from gate ends the feed with it.
func (s *Server) FeedPaced(ctx context.Context, filter, topic string, payload []byte, n int, gate func(sent int) error) error {
	s.mu.Lock()
	c := s.last
	s.mu.Unlock()
	if c == nil {
		return errors.New("feeder: no client connected")
	}
	c.mu.Lock()
	id := c.ids[filter]
	c.mu.Unlock()
	if s.noIDs {
		id = 0
	}
	one := appendPublish(nil, c.version, topic, payload, id)
	const batch = 512
	buf := make([]byte, 0, batch*len(one))
	for range batch {
		buf = append(buf, one...)
	}
	for sent := 0; sent < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if gate != nil {
			if err := gate(sent); err != nil {
				return err
			}
		}
		k := min(batch, n-sent)
		// The write lock is taken per batch, so that a PINGRESP goes out
		// between two batches: held for the whole feed, it kept
		// paho.golang (which wants its PINGRESP) from getting one, and it
		// closed the connection mid-feed ("broken pipe").
		c.wmu.Lock()
		_, err := c.nc.Write(buf[:k*len(one)])
		c.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("feeder: %d of %d written: %w", sent, n, err)
		}
		sent += k
	}
	return nil
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{nc: nc, ids: make(map[string]int)}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			_ = s.serve(c)
			_ = nc.Close()
			s.mu.Lock()
			delete(s.conns, c)
			if s.last == c {
				s.last = nil
			}
			s.mu.Unlock()
		}()
	}
}

var errProtocol = errors.New("feeder: unsupported or malformed packet")

func (s *Server) serve(c *conn) error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var body []byte
	for {
		hdr, err := r.ReadByte()
		if err != nil {
			return err
		}
		n, err := readVarint(r)
		if err != nil {
			return err
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		var out []byte
		switch hdr >> 4 {
		case 1: // CONNECT
			if len(body) < 7 {
				return errProtocol
			}
			nl := int(body[0])<<8 | int(body[1])
			if len(body) < 2+nl+1 {
				return errProtocol
			}
			c.version = body[2+nl]
			switch {
			case c.version < 5:
				out = []byte{0x20, 2, 0, 0}
			case s.noIDs:
				out = []byte{0x20, 5, 0, 0, 2, 0x29, 0} // Subscription Identifier Available = 0
			default:
				out = []byte{0x20, 3, 0, 0, 0}
			}
			s.mu.Lock()
			s.last = c
			s.mu.Unlock()
		case 8: // SUBSCRIBE
			out, err = c.subscribe(body)
			if err != nil {
				return err
			}
		case 12: // PINGREQ
			out = []byte{0xD0, 0}
		case 14: // DISCONNECT
			return nil
		default:
			// Acknowledgements and publishes: not expected, ignored.
		}
		if out != nil {
			c.wmu.Lock()
			_, err := c.nc.Write(out)
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// subscribe records the packet's filters (and Subscription Identifier) and
// returns the SUBACK granting each QoS 0.
func (c *conn) subscribe(b []byte) ([]byte, error) {
	if len(b) < 2 {
		return nil, errProtocol
	}
	pid := b[:2]
	i := 2
	id := 0
	if c.version >= 5 {
		pl, k := uvarint(b[i:])
		if k == 0 || i+k+pl > len(b) {
			return nil, errProtocol
		}
		props := b[i+k : i+k+pl]
		i += k + pl
		for j := 0; j < len(props); {
			switch props[j] {
			case 0x0B: // Subscription Identifier
				v, k := uvarint(props[j+1:])
				if k == 0 {
					return nil, errProtocol
				}
				id = v
				j += 1 + k
			case 0x26: // User Property: two strings
				j++
				for range 2 {
					if j+2 > len(props) {
						return nil, errProtocol
					}
					j += 2 + (int(props[j])<<8 | int(props[j+1]))
				}
			default:
				return nil, errProtocol
			}
		}
	}
	var codes []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for i < len(b) {
		if i+2 > len(b) {
			return nil, errProtocol
		}
		fl := int(b[i])<<8 | int(b[i+1])
		if i+2+fl+1 > len(b) {
			return nil, errProtocol
		}
		f := string(b[i+2 : i+2+fl])
		i += 2 + fl + 1
		if id > 0 {
			c.ids[f] = id
		}
		c.filters++
		codes = append(codes, 0)
	}
	var v []byte
	v = append(v, pid...)
	if c.version >= 5 {
		v = append(v, 0) // no properties
	}
	v = append(v, codes...)
	return append(appendVarint([]byte{0x90}, len(v)), v...), nil
}

// appendPublish encodes a QoS 0 PUBLISH, with a Subscription Identifier
// property when id > 0 (MQTT 5 only).
func appendPublish(b []byte, version byte, topic string, payload []byte, id int) []byte {
	var props []byte
	if id > 0 {
		props = appendVarint([]byte{0x0B}, id)
	}
	rem := 2 + len(topic) + len(payload)
	if version >= 5 {
		rem += len(appendVarint(nil, len(props))) + len(props)
	}
	b = appendVarint(append(b, 0x30), rem)
	b = append(b, byte(len(topic)>>8), byte(len(topic)))
	b = append(b, topic...)
	if version >= 5 {
		b = appendVarint(b, len(props))
		b = append(b, props...)
	}
	return append(b, payload...)
}

func readVarint(r *bufio.Reader) (int, error) {
	n, mult := 0, 1
	for range 4 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n += int(b&0x7F) * mult
		if b&0x80 == 0 {
			return n, nil
		}
		mult *= 128
	}
	return 0, errProtocol
}

// uvarint decodes an MQTT variable byte integer; n = 0 when b holds none.
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
	return 0, 0
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
