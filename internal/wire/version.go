package wire

import (
	"math/bits"
	"strconv"
)

// Version is an MQTT protocol version, as the Protocol Level byte of a
// CONNECT gives it. Every function that encodes or decodes a packet
// takes the version of the connection; [Reader] and [Pingreq] are the
// same in both.
type Version byte

// The versions the package reads and writes.
const (
	// V311 is MQTT 3.1.1 (protocol level 4): no properties, no reason
	// codes but CONNACK's return codes and SUBACK's, no subscription
	// options but the maximum QoS, no AUTH, no DISCONNECT from the server.
	V311 Version = 4
	// V5 is MQTT 5.0 (protocol level 5).
	V5 Version = 5
)

// String returns "MQTT 3.1.1", "MQTT 5" or, for another value, its
// protocol level.
func (v Version) String() string {
	switch v {
	case V311:
		return "MQTT 3.1.1"
	case V5:
		return "MQTT 5"
	}
	return "MQTT protocol level " + strconv.Itoa(int(v))
}

// checkV311 reports a Version that is neither V5 nor V311, for the
// functions that have already taken their V5 branch: an error matching
// ErrInvalid.
func (v Version) checkV311() error {
	if v != V311 {
		return invalid("%s is not supported (want 4, MQTT 3.1.1, or 5, MQTT 5)", v)
	}
	return nil
}

// noProps reports, for MQTT 3.1.1, a property block that is not empty:
// an error matching ErrInvalid that names the first property present.
func noProps(what string, p *Props) error {
	if p.Set == 0 {
		return nil
	}
	return invalid("%s cannot carry property %s in MQTT 3.1.1 (MQTT 5 only)", what, propName(byte(bits.TrailingZeros64(p.Set))))
}

// CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3), and the MQTT 5
// reason codes that say the same.
const (
	ReturnAccepted                    byte = 0 // Connection Accepted
	ReturnUnacceptableProtocolVersion byte = 1 // 0x84 Unsupported Protocol Version
	ReturnIdentifierRejected          byte = 2 // 0x85 Client Identifier not valid
	ReturnServerUnavailable           byte = 3 // 0x88 Server unavailable
	ReturnBadUsernameOrPassword       byte = 4 // 0x86 Bad User Name or Password
	ReturnNotAuthorized               byte = 5 // 0x87 Not authorized
)

// returnCodeReasons maps the MQTT 3.1.1 CONNACK return codes to MQTT 5
// reason codes.
var returnCodeReasons = [...]byte{
	ReturnAccepted:                    0x00,
	ReturnUnacceptableProtocolVersion: 0x84,
	ReturnIdentifierRejected:          0x85,
	ReturnServerUnavailable:           0x88,
	ReturnBadUsernameOrPassword:       0x86,
	ReturnNotAuthorized:               0x87,
}

// ReasonForReturnCode returns the MQTT 5 CONNACK reason code that says
// what the MQTT 3.1.1 return code rc says: 0 for 0, 0x84, 0x85, 0x88,
// 0x86 and 0x87 for 1 to 5; false for a return code 3.1.1 reserves (6 to
// 255).
func ReasonForReturnCode(rc byte) (byte, bool) {
	if int(rc) >= len(returnCodeReasons) {
		return 0, false
	}
	return returnCodeReasons[rc], true
}
