// Package sink is a minimal MQTT server on 127.0.0.1 for allocation
// benchmarks: it answers CONNECT, SUBSCRIBE, PINGREQ and QoS 1 PUBLISH
// (with PUBACK), counts and discards every PUBLISH, and allocates nothing
// per message, so that a benchmark's allocs/op are the client's alone. It
// routes nothing to subscribers; it is not a broker.
package sink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Server is the sink. Its methods are safe for concurrent use.
type Server struct {
	ln        net.Listener
	published atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens on 127.0.0.1 (random port).
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: listen: %w", err)
	}
	s := &Server{ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Published returns how many PUBLISH packets were read.
func (s *Server) Published() int64 { return s.published.Load() }

// Close closes the listener and every connection and waits for the
// goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			_ = s.serve(c)
			_ = c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

var errProtocol = errors.New("sink: unsupported packet")

func (s *Server) serve(c net.Conn) error {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	body := make([]byte, 0, 64<<10)
	version := byte(5)
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
		switch hdr >> 4 {
		case 1: // CONNECT
			if len(body) < 7 {
				return errProtocol
			}
			version = body[2+int(body[0])<<8|int(body[1])]
			if version == 5 {
				put(w, 0x20, 3, 0, 0, 0)
			} else {
				put(w, 0x20, 2, 0, 0)
			}
		case 3: // PUBLISH
			s.published.Add(1)
			switch (hdr >> 1) & 3 {
			case 0:
			case 1:
				if len(body) < 2 {
					return errProtocol
				}
				tl := int(body[0])<<8 | int(body[1])
				if len(body) < tl+4 {
					return errProtocol
				}
				put(w, 0x40, 2, body[2+tl], body[3+tl])
			default:
				return errProtocol
			}
		case 8: // SUBSCRIBE: grant QoS 0 to one filter
			if len(body) < 2 {
				return errProtocol
			}
			if version == 5 {
				put(w, 0x90, 4, body[0], body[1], 0, 0)
			} else {
				put(w, 0x90, 3, body[0], body[1], 0)
			}
		case 12: // PINGREQ
			put(w, 0xD0, 0)
		case 14: // DISCONNECT
			return w.Flush()
		default:
			// Acknowledgements of nothing we sent: ignore.
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func readVarint(r *bufio.Reader) (int, error) {
	n, mult := 0, 1
	for i := 0; i < 4; i++ {
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

// put writes bytes one at a time: no slice, so nothing escapes.
func put(w *bufio.Writer, b ...byte) {
	for _, c := range b {
		_ = w.WriteByte(c)
	}
}
