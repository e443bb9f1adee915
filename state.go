package mqttkeep

import "strconv"

// State is the connection state of a [Client].
type State int

// The states a Client moves through. A new Client is Disconnected; Connect
// moves it to Connecting, each CONNACK to Connected, each loss back to
// Connecting while it retries; Close (or a refusal that retrying cannot
// fix) ends in Closed or Stopped.
const (
	// StateDisconnected: Connect has not been called yet.
	StateDisconnected State = iota
	// StateConnecting: dialing, waiting for CONNACK, or waiting to retry.
	StateConnecting
	// StateConnected: a connection is up and usable.
	StateConnected
	// StateStopped: the broker refused the client for a reason retrying
	// cannot fix (see [ReasonCodeError.Final]); Close is still needed.
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
