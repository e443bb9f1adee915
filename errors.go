package mqttkeep

import (
	"errors"
	"fmt"
)

// Sentinel errors, for [errors.Is]; see the package doc's Errors.
var (
	// ErrInvalidOption is returned by [New] for a bad option (named).
	ErrInvalidOption = errors.New("mqttkeep: invalid option")
	// ErrClosed is returned by calls on a closed client.
	ErrClosed = errors.New("mqttkeep: client closed")
	// ErrNotConnected is returned with no connection, or after a final refusal.
	ErrNotConnected = errors.New("mqttkeep: not connected")
	// ErrPingTimeout ends a link silent for the ping timeout after a probe.
	ErrPingTimeout = errors.New("mqttkeep: ping timeout: no traffic from broker")
	// ErrConnectTimeout ends an attempt longer than [WithConnectTimeout].
	ErrConnectTimeout = errors.New("mqttkeep: connect timeout")
	// ErrInvalidTopic is returned for a topic name or filter MQTT forbids.
	ErrInvalidTopic = errors.New("mqttkeep: invalid topic")
	// ErrInvalidQoS is returned for a QoS not 0, 1 or 2, or above the broker's.
	ErrInvalidQoS = errors.New("mqttkeep: invalid QoS")
	// ErrQueueFull is returned when the queue or the store is full.
	ErrQueueFull = errors.New("mqttkeep: offline queue full")
	// ErrPacketTooLarge is a packet over MQTT's, the broker's or our maximum.
	ErrPacketTooLarge = errors.New("mqttkeep: packet too large")
	// ErrTooManyPings is returned by [Client.Ping] with 64 pings unanswered.
	ErrTooManyPings = errors.New("mqttkeep: too many pings in flight")
	// ErrInvalidArgument is returned for an unusable value; the text names it.
	ErrInvalidArgument = errors.New("mqttkeep: invalid argument")
	// ErrNotSupported is returned for what the broker's CONNACK said it lacks.
	ErrNotSupported = errors.New("mqttkeep: not supported by the broker")
	// ErrWriteTimeout ends a link whose write stalled for [WithWriteTimeout].
	ErrWriteTimeout = errors.New("mqttkeep: write timeout")
	// ErrMalformedPacket ends a link the broker sent non-MQTT bytes on (0x81).
	ErrMalformedPacket = errors.New("mqttkeep: malformed packet")
	// ErrProtocolViolation ends a link the broker broke MQTT's rules on (0x82).
	ErrProtocolViolation = errors.New("mqttkeep: protocol violation")
	// ErrAuthFailed is returned when the [Authenticator] failed a step.
	ErrAuthFailed = errors.New("mqttkeep: authentication failed")
)

// ReasonCodeError is a failure reason code from the broker ([errors.As]).
type ReasonCodeError struct {
	// Packet names the packet that carried the code (CONNACK, PUBACK, ...).
	Packet string
	// Code is the reason code.
	Code ReasonCode
	// Reason is the broker's Reason String, if any.
	Reason string
	// ServerReference is the broker's Server Reference (CONNACK, DISCONNECT), if any.
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

// Final reports whether retrying cannot help (CONNACK 0x84–0x87, 0x8A, 0x8C).
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
