package mqtt311

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// DefaultTimeout bounds each operation of a Conn (dial and CONNACK, one
// write, one read) when no timeout is given: 10 s.
const DefaultTimeout = 10 * time.Second

// Conn is a TCP connection that sends and reads raw packets, every
// operation bounded by its timeout through the socket's deadlines (no
// goroutine). It is meant for one test goroutine and is not safe for
// concurrent use.
type Conn struct {
	nc      net.Conn
	timeout time.Duration
}

// Dial connects to addr, sends c and reads the CONNACK, within timeout
// (0: DefaultTimeout). It returns the CONNACK's Session Present flag. A
// return code other than 0 gives a *RefusedError (errors.Is ErrRefused)
// and closes the connection; a connection closed before any CONNACK (as
// RabbitMQ 3.10 does with an MQTT 5 CONNECT) gives an error wrapping
// io.EOF or the socket's error.
func Dial(addr string, c Connect, timeout time.Duration) (*Conn, bool, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	pkt, err := c.Bytes()
	if err != nil {
		return nil, false, err
	}
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, false, fmt.Errorf("mqtt311: dial %s: %w", addr, err)
	}
	conn := &Conn{nc: nc, timeout: timeout}
	if err := conn.Send(pkt); err != nil {
		_ = nc.Close()
		return nil, false, err
	}
	p, err := conn.Read()
	if err != nil {
		_ = nc.Close()
		return nil, false, fmt.Errorf("mqtt311: %s: no CONNACK: %w", addr, err)
	}
	present, code, err := p.Connack()
	if err != nil {
		_ = nc.Close()
		return nil, false, err
	}
	if code != 0 {
		_ = nc.Close()
		return nil, false, &RefusedError{Code: code}
	}
	return conn, present, nil
}

// Probe checks that an MQTT 3.1.1 broker accepts c at addr: it dials,
// reads a CONNACK with return code 0, sends DISCONNECT and closes, all
// within timeout (0: DefaultTimeout) for each step.
func Probe(addr string, c Connect, timeout time.Duration) error {
	conn, _, err := Dial(addr, c, timeout)
	if err != nil {
		return err
	}
	return conn.Disconnect()
}

// SetTimeout changes the bound of each later operation (0:
// DefaultTimeout).
func (c *Conn) SetTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultTimeout
	}
	c.timeout = d
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Send writes one encoded packet.
func (c *Conn) Send(packet []byte) error {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return fmt.Errorf("mqtt311: write: %w", err)
	}
	if _, err := c.nc.Write(packet); err != nil {
		return fmt.Errorf("mqtt311: write: %w", err)
	}
	return nil
}

// Read reads the next packet (at most DefaultMaxPacket bytes).
func (c *Conn) Read() (Packet, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return Packet{}, fmt.Errorf("mqtt311: read: %w", err)
	}
	return ReadPacket(c.nc, 0)
}

// Expect reads the next packet and checks that its type is t.
func (c *Conn) Expect(t Type) (Packet, error) {
	p, err := c.Read()
	if err != nil {
		return Packet{}, fmt.Errorf("mqtt311: waiting for %v: %w", t, err)
	}
	if p.Type != t {
		return p, fmt.Errorf("%w: want %v, got %v % X", ErrMalformed, t, p, p.Body)
	}
	return p, nil
}

// Publish sends a PUBLISH (see the package function Publish).
func (c *Conn) Publish(topic string, payload []byte, qos byte, packetID uint16, retain bool) error {
	pkt, err := Publish(topic, payload, qos, packetID, retain, false)
	if err != nil {
		return err
	}
	return c.Send(pkt)
}

// Subscribe sends a SUBSCRIBE and returns the return codes of its SUBACK,
// which must be the next packet and carry the same packet identifier.
func (c *Conn) Subscribe(packetID uint16, filters ...Filter) ([]byte, error) {
	pkt, err := Subscribe(packetID, filters...)
	if err != nil {
		return nil, err
	}
	if err := c.Send(pkt); err != nil {
		return nil, err
	}
	p, err := c.Expect(SUBACK)
	if err != nil {
		return nil, err
	}
	id, codes, err := p.Suback()
	if err != nil {
		return nil, err
	}
	if id != packetID || len(codes) != len(filters) {
		return nil, fmt.Errorf("%w: SUBACK for packet %d with %d codes, want packet %d with %d",
			ErrMalformed, id, len(codes), packetID, len(filters))
	}
	return codes, nil
}

// Ack sends a PUBACK, PUBREC, PUBREL or PUBCOMP.
func (c *Conn) Ack(t Type, packetID uint16) error {
	pkt, err := Ack(t, packetID)
	if err != nil {
		return err
	}
	return c.Send(pkt)
}

// Disconnect sends DISCONNECT and closes the connection; the error is the
// write's or the close's.
func (c *Conn) Disconnect() error {
	return errors.Join(c.Send(Disconnect()), c.nc.Close())
}

// Close closes the connection without DISCONNECT (a broker then sends
// the Will, if any).
func (c *Conn) Close() error { return c.nc.Close() }
