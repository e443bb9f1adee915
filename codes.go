package mqttkeep

import (
	"fmt"
	"strconv"
)

// QoS is an MQTT quality of service level.
type QoS byte

// The three QoS levels.
const (
	QoS0 QoS = 0 // at most once: no acknowledgement, lost with the connection
	QoS1 QoS = 1 // at least once: acknowledged (PUBACK), re-sent until then
	QoS2 QoS = 2 // exactly once: a four-packet exchange, never delivered twice
)

// String returns "QoS 0", "QoS 1" or "QoS 2" (or "QoS(n)" for another
// value).
func (q QoS) String() string {
	if q <= QoS2 {
		return "QoS " + strconv.Itoa(int(q))
	}
	return "QoS(" + strconv.Itoa(int(q)) + ")"
}

// ReasonCode is an MQTT v5 reason code (0x80 and above: failure), formatted as
// its name by %v and %s, as its number by other verbs ("0x%02X": "0x86").
type ReasonCode byte

// Format implements [fmt.Formatter]: %v and %s the name, other verbs the
// number.
func (c ReasonCode) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's':
		_, _ = f.Write([]byte(c.String()))
	default:
		fmt.Fprintf(f, fmt.FormatString(f, verb), byte(c))
	}
}

// String returns the code's MQTT v5 name, or "unknown reason code".
func (c ReasonCode) String() string {
	if s, ok := reasonText[c]; ok {
		return s
	}
	return "unknown reason code"
}

var reasonText = map[ReasonCode]string{
	0x00: "success",
	0x04: "disconnect with will message",
	0x10: "no matching subscribers",
	0x11: "no subscription existed",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8B: "server shutting down",
	0x8C: "bad authentication method",
	0x8D: "keep alive timeout",
	0x8E: "session taken over",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x92: "packet identifier not found",
	0x93: "receive maximum exceeded",
	0x94: "topic alias invalid",
	0x95: "packet too large",
	0x96: "message rate too high",
	0x97: "quota exceeded",
	0x98: "administrative action",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}
