package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// item is one entry of a direction's queue: a chunk of data, or the end of
// the stream (end set; eof tells a clean FIN from an error).
type item struct {
	at   time.Time
	data []byte
	end  bool
	eof  bool
}

// pipe is one direction of a connection: a reader goroutine reads from src
// and either writes to dst directly (Pass, empty queue), drops (Blackhole) or
// queues for the writer goroutine (Delay, or Pass while the queue drains).
type pipe struct {
	c        *conn
	src, dst *net.TCPConn

	notify chan struct{} // reader -> writer: queue grew
	space  chan struct{} // writer -> reader: queue shrank

	mu     sync.Mutex
	queue  []item
	queued int // data bytes in queue
}

func newPipe(c *conn, src, dst *net.TCPConn) *pipe {
	return &pipe{
		c:      c,
		src:    src,
		dst:    dst,
		notify: make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
	}
}

func (pp *pipe) readLoop() {
	defer pp.c.p.wg.Done()
	buf := make([]byte, readBufSize)
	for {
		if !pp.waitReadable() {
			return
		}
		n, err := pp.src.Read(buf)
		if n > 0 && !pp.handle(buf[:n]) {
			return
		}
		if err != nil {
			if pp.c.isDone() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // interrupted by Stall; re-check the mode
			}
			pp.finish(errors.Is(err, io.EOF))
			return
		}
	}
}

// waitReadable blocks while the queue is full or the proxy is stalled. It
// reports false if the connection was shut down.
func (pp *pipe) waitReadable() bool {
	p := pp.c.p
	for {
		pp.mu.Lock()
		full := pp.queued >= maxQueued
		pp.mu.Unlock()
		if full {
			select {
			case <-pp.space:
				continue
			case <-pp.c.done:
				return false
			}
		}

		p.mu.Lock()
		m, changed := p.mode, p.changed
		if m != modeStall {
			_ = pp.src.SetReadDeadline(time.Time{})
		}
		p.mu.Unlock()
		if m != modeStall {
			return true
		}
		select {
		case <-changed:
		case <-pp.c.done:
			return false
		}
	}
}

// handle processes one chunk read from src according to the current mode.
// It reports false if the connection was shut down.
func (pp *pipe) handle(chunk []byte) bool {
	for {
		m, d, changed := pp.c.p.state()
		switch m {
		case modeStall:
			// Read just before the stall took effect: hold it until the
			// mode changes, then treat it according to the new mode.
			select {
			case <-changed:
				continue
			case <-pp.c.done:
				return false
			}
		case modeBlackhole:
			return true
		case modePass:
			if pp.queueEmpty() {
				if _, err := pp.dst.Write(chunk); err != nil {
					pp.c.shutdown(true)
					return false
				}
				return true
			}
			pp.enqueue(item{at: time.Now(), data: clone(chunk)})
			return true
		default: // modeDelay
			pp.enqueue(item{at: time.Now().Add(d), data: clone(chunk)})
			return true
		}
	}
}

// finish passes on the end of the stream read from src (a FIN if eof, an
// RST otherwise) once the link is up (Pass or Delay).
func (pp *pipe) finish(eof bool) {
	for {
		m, d, changed := pp.c.p.state()
		switch m {
		case modeStall, modeBlackhole:
			select {
			case <-changed:
				continue
			case <-pp.c.done:
				return
			}
		case modePass:
			if pp.queueEmpty() {
				pp.deliverEnd(eof)
				return
			}
			pp.enqueue(item{at: time.Now(), end: true, eof: eof})
			return
		default: // modeDelay
			pp.enqueue(item{at: time.Now().Add(d), end: true, eof: eof})
			return
		}
	}
}

func (pp *pipe) deliverEnd(eof bool) {
	if !eof {
		pp.c.shutdown(true)
		return
	}
	_ = pp.dst.CloseWrite()
	if pp.c.ended.Add(1) == 2 {
		pp.c.shutdown(false)
	}
}

func (pp *pipe) queueEmpty() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.queue) == 0
}

func (pp *pipe) enqueue(it item) {
	pp.mu.Lock()
	pp.queue = append(pp.queue, it)
	pp.queued += len(it.data)
	pp.mu.Unlock()
	select {
	case pp.notify <- struct{}{}:
	default:
	}
}

func (pp *pipe) writeLoop() {
	defer pp.c.p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pp.mu.Lock()
		var it item
		ok := len(pp.queue) > 0
		if ok {
			it = pp.queue[0]
		}
		pp.mu.Unlock()
		if !ok {
			select {
			case <-pp.notify:
				continue
			case <-pp.c.done:
				return
			}
		}
		if wait := time.Until(it.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pp.c.done:
				return
			}
		}
		if it.end {
			pp.deliverEnd(it.eof)
			return
		}
		// The head stays queued while it is written, so the reader does
		// not write directly past it.
		if m, _, _ := pp.c.p.state(); m != modeBlackhole {
			if _, err := pp.dst.Write(it.data); err != nil {
				pp.c.shutdown(true)
				return
			}
		}
		pp.mu.Lock()
		pp.queue[0] = item{}
		pp.queue = pp.queue[1:]
		pp.queued -= len(it.data)
		pp.mu.Unlock()
		select {
		case pp.space <- struct{}{}:
		default:
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
