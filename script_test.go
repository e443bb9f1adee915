package mqttkeep_test

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
)

// scripted is a hand-driven MQTT server for the behaviour no real broker
// shows (a server that stops reading, never acknowledges, sends malformed
// packets, redirects in a loop): the test reads the client's packets and
// writes the server's, byte for byte, over net.Pipe — so it works inside
// a testing/synctest bubble. paho.golang's codec reads and writes the
// packets, as an independent implementation.
type scripted struct {
	t     testing.TB
	conns chan *scriptConn
	stop  chan struct{}
}

// newScripted returns a scripted server; call close before the test's
// synctest bubble ends, so that the server's goroutines return.
func newScripted(t testing.TB) *scripted {
	return &scripted{t: t, conns: make(chan *scriptConn, 64), stop: make(chan struct{})}
}

// close ends the scripted server's loops (see sleep).
func (s *scripted) close() { close(s.stop) }

// sleep waits d, or returns false once the server is closed.
func (s *scripted) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-s.stop:
		return false
	}
}

// dialer is the client option that connects to the scripted server.
func (s *scripted) dialer() mqttkeep.Option {
	return mqttkeep.WithDialer(func(ctx context.Context, _ *url.URL) (net.Conn, error) {
		client, server := net.Pipe()
		select {
		case s.conns <- &scriptConn{Conn: server, t: s.t}:
			return client, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

// accept returns the server side of the next connection.
func (s *scripted) accept() *scriptConn {
	s.t.Helper()
	return <-s.conns
}

// scriptConn is the server side of one connection.
type scriptConn struct {
	net.Conn
	t testing.TB
}

// read reads the next packet from the client; nil at end of stream.
func (c *scriptConn) read() *packets.ControlPacket {
	cp, err := packets.ReadPacket(c.Conn)
	if err != nil {
		return nil
	}
	return cp
}

// send writes a paho control packet.
func (c *scriptConn) send(cp *packets.ControlPacket) bool {
	var b bytes.Buffer
	if _, err := cp.WriteTo(&b); err != nil {
		c.t.Errorf("scripted server: encoding %s: %v", cp.PacketType(), err)
		return false
	}
	_, err := c.Conn.Write(b.Bytes())
	return err == nil
}

// raw writes bytes as they are.
func (c *scriptConn) raw(b []byte) bool {
	_, err := c.Conn.Write(b)
	return err == nil
}

// handshake reads CONNECT and answers CONNACK with props (nil: none).
func (c *scriptConn) handshake(props *packets.Properties) *packets.Connect {
	c.t.Helper()
	cp := c.read()
	if cp == nil || cp.Type != packets.CONNECT {
		c.t.Errorf("scripted server: want CONNECT, got %v", cp)
		return nil
	}
	if props == nil {
		props = &packets.Properties{}
	}
	ca := packets.NewControlPacket(packets.CONNACK)
	ca.Content.(*packets.Connack).Properties = props
	c.send(ca)
	return cp.Content.(*packets.Connect)
}

// serve answers PINGREQ with PINGRESP and SUBSCRIBE with SUBACK (granting
// the QoS asked), and calls onOther for every other packet, until the
// client goes; it returns the packets' types in order.
func (c *scriptConn) serve(onOther func(*packets.ControlPacket)) []byte {
	var seen []byte
	for {
		cp := c.read()
		if cp == nil {
			return seen
		}
		seen = append(seen, cp.Type)
		switch p := cp.Content.(type) {
		case *packets.Pingreq:
			c.send(packets.NewControlPacket(packets.PINGRESP))
		case *packets.Subscribe:
			sa := packets.NewControlPacket(packets.SUBACK)
			s := sa.Content.(*packets.Suback)
			s.PacketID = p.PacketID
			for _, o := range p.Subscriptions {
				s.Reasons = append(s.Reasons, o.QoS)
			}
			c.send(sa)
		default:
			if onOther != nil {
				onOther(cp)
			}
		}
	}
}
