package mqttkeep

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of these, an
// [*ReasonCodeError], a context error or the network error that caused it,
// so callers can test with [errors.Is] and [errors.As].
var (
	// ErrInvalidOption is returned by [New] when an option has a value it
	// cannot use; the message names the option.
	ErrInvalidOption = errors.New("mqttkeep: invalid option")

	// ErrClosed is returned by every method called after [Client.Close].
	ErrClosed = errors.New("mqttkeep: client closed")

	// ErrNotConnected is returned when a call needs a live connection and
	// there is none.
	ErrNotConnected = errors.New("mqttkeep: not connected")

	// ErrPingTimeout is the cause of a disconnect when nothing arrived from
	// the broker within the ping timeout after a PINGREQ: the link is
	// considered dead.
	ErrPingTimeout = errors.New("mqttkeep: ping timeout: no traffic from broker")

	// ErrConnectTimeout is returned when the network dial plus CONNECT/CONNACK
	// exchange took longer than the connect timeout.
	ErrConnectTimeout = errors.New("mqttkeep: connect timeout")

	// ErrInvalidTopic is returned for a topic name or topic filter that the
	// MQTT v5 specification does not allow; nothing is sent.
	ErrInvalidTopic = errors.New("mqttkeep: invalid topic")

	// ErrInvalidQoS is returned for a QoS other than 0, 1 or 2; nothing is
	// sent.
	ErrInvalidQoS = errors.New("mqttkeep: invalid QoS")

	// ErrQueueFull is returned by Publish when the client is reconnecting
	// and the offline queue already holds its limit of messages or bytes
	// (see WithQueueLimits). Nothing was queued.
	ErrQueueFull = errors.New("mqttkeep: offline queue full")

	// ErrPacketTooLarge is returned by Publish for a message whose packet
	// exceeds the broker's Maximum Packet Size (nothing is sent), and is
	// the cause of a disconnect when the broker announces a packet larger
	// than WithMaxPacketSize.
	ErrPacketTooLarge = errors.New("mqttkeep: packet too large")

	// ErrTooManyPings is returned by [Client.Ping] when too many pings are
	// already waiting for an answer.
	ErrTooManyPings = errors.New("mqttkeep: too many pings in flight")

	// ErrInvalidArgument is returned for a value MQTT cannot carry or an
	// argument the call cannot use (a nil handler, a property longer than
	// 65,535 bytes or not valid UTF-8, a message expiry that is not whole
	// seconds, ...); nothing is sent. The message names the value.
	ErrInvalidArgument = errors.New("mqttkeep: invalid argument")

	// ErrNotSupported is returned when the broker said in its CONNACK that
	// it does not support what was asked (retained messages, ...).
	ErrNotSupported = errors.New("mqttkeep: not supported by the broker")

	// ErrWriteTimeout is the cause of a disconnect when a write to the
	// socket made no progress for the write timeout (see
	// [WithWriteTimeout]).
	ErrWriteTimeout = errors.New("mqttkeep: write timeout")

	// ErrMalformedPacket is the cause of a disconnect when the broker sent
	// bytes that are not a valid MQTT v5 packet: the client answers with
	// DISCONNECT 0x81 and closes the connection.
	ErrMalformedPacket = errors.New("mqttkeep: malformed packet")

	// ErrProtocolViolation is the cause of a disconnect when the broker
	// sent a valid packet that MQTT v5 does not allow at that point (for
	// example a topic alias it never set): the client answers with
	// DISCONNECT 0x82 (or the specific code) and closes the connection.
	ErrProtocolViolation = errors.New("mqttkeep: protocol violation")

	// ErrAuthFailed is returned when the [Authenticator] given with
	// WithAuthenticator fails a step of enhanced authentication.
	ErrAuthFailed = errors.New("mqttkeep: authentication failed")
)

// ReasonCodeError is an MQTT v5 reason code (0x80 or above) sent by the
// broker: a refused CONNECT, a server-initiated DISCONNECT, or a failed
// PUBLISH, SUBSCRIBE or UNSUBSCRIBE. Use [errors.As] to read it.
type ReasonCodeError struct {
	// Packet names the packet that carried the code: "CONNACK",
	// "DISCONNECT", "PUBACK", "PUBREC", "PUBCOMP", "SUBACK" or "UNSUBACK".
	Packet string
	// Code is the MQTT v5 reason code.
	Code ReasonCode
	// Reason is the Reason String property, if the broker sent one.
	Reason string
	// ServerReference is the Server Reference property (CONNACK and
	// DISCONNECT only), if the broker sent one.
	ServerReference string
}

// Error implements error: "mqttkeep: CONNACK 0x86 bad user name or password".
func (e *ReasonCodeError) Error() string {
	msg := fmt.Sprintf("mqttkeep: %s 0x%02X %s", e.Packet, e.Code, e.Code)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Final reports whether retrying the connection cannot help: the broker
// refused the client itself (bad credentials, not authorized, banned,
// unsupported protocol version, invalid client identifier, bad
// authentication method).
func (e *ReasonCodeError) Final() bool {
	if e.Packet != "CONNACK" {
		return false
	}
	switch e.Code {
	case 0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C:
		return true
	}
	return false
}

// optionError builds the error New returns for a bad option value.
func optionError(option, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}
