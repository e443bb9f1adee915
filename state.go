package mqttkeep

import (
	"fmt"
	"strconv"
)

// State is the connection state of a [Client].
type State int

// The states a Client goes through: Disconnected, then Connecting and Connected
// in turn, until Closed or Stopped.
const (
	// StateDisconnected: Connect has not been called yet.
	StateDisconnected State = iota
	// StateConnecting: dialing, waiting for CONNACK, or waiting to retry.
	StateConnecting
	// StateConnected: a connection is up and usable.
	StateConnected
	// StateStopped: a final refusal or a takeover stopped it; Close is still needed.
	StateStopped
	// StateClosed: Close was called.
	StateClosed
)

// String returns the state's name in lower case, e.g. "connected".
func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateStopped:
		return "stopped"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText implements [encoding.TextMarshaler]: a State is its name.
func (s State) MarshalText() ([]byte, error) {
	if s < StateDisconnected || s > StateClosed {
		return nil, fmt.Errorf("%w: state %d", ErrInvalidArgument, int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText is MarshalText's inverse; other text is [ErrInvalidArgument].
func (s *State) UnmarshalText(text []byte) error {
	for v := StateDisconnected; v <= StateClosed; v++ {
		if string(text) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("%w: unknown state %q", ErrInvalidArgument, text)
}
