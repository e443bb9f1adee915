// Package wsconn turns a WebSocket connection into a net.Conn carrying a
// byte stream, as MQTT over WebSocket needs: every Write is sent as one
// binary message, and Read returns the bytes of the binary messages
// received, in order, regardless of how they were split into messages.
// Dial opens such a connection to a ws:// or wss:// URL: the one
// WebSocket dialer of the library and of the mqttkeep command.
package wsconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocol is the WebSocket subprotocol MQTT uses (MQTT v5 section 6).
const Subprotocol = "mqtt"

// ErrNotBinary is returned by Read when the peer sends a text message,
// which MQTT over WebSocket does not allow.
var ErrNotBinary = errors.New("wsconn: received a non-binary WebSocket message")

// Conn is a net.Conn over a *websocket.Conn.
type Conn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read, if any

	wmu           sync.Mutex   // gorilla allows one concurrent writer
	writeDeadline atomic.Int64 // UnixNano; 0: none
}

// New wraps ws.
func New(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// Read reads the stream carried by binary messages.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, fmt.Errorf("%w (type %d)", ErrNotBinary, op)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue // an empty message, or the end of one: next
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// gorilla applies its own write deadline to every frame; keep it in
	// step with ours (its setter must not run during a write).
	var dl time.Time
	if ns := c.writeDeadline.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	_ = c.ws.SetWriteDeadline(dl)
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the underlying network connection without a close
// handshake (MQTT's DISCONNECT, when there is one, has already been sent).
func (c *Conn) Close() error { return c.ws.NetConn().Close() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline. It is safe to call during a
// Write, which it interrupts when t has passed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.writeDeadline.Store(ns)
	return c.ws.NetConn().SetWriteDeadline(t)
}
