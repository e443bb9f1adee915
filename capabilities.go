package mqttkeep

import (
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Capabilities is what a broker announced in its CONNACK: the limits it
// enforces and the features it offers. Absent properties take the values
// MQTT v5 gives them.
type Capabilities struct {
	// ProtocolVersion is the MQTT version of the connection: MQTT5, or
	// MQTT311 with a broker that refused 5 (see WithProtocolVersion). A
	// 3.1.1 broker announces nothing else: the other fields then keep the
	// values MQTT 5 gives absent properties, but SubscriptionIDsAvailable.
	ProtocolVersion ProtocolVersion
	// MaximumQoS is the highest QoS the broker accepts in PUBLISH (2 when
	// not announced). The client refuses a higher one with ErrInvalidQoS.
	MaximumQoS QoS
	// RetainAvailable reports whether the broker keeps retained messages.
	RetainAvailable bool
	// MaximumPacketSize is the largest packet the broker accepts, 0 for
	// no limit but MQTT's own.
	MaximumPacketSize int
	// ReceiveMaximum is how many QoS 1/2 messages the broker takes before
	// it acknowledged them (65,535 when not announced).
	ReceiveMaximum int
	// TopicAliasMaximum is how many topic aliases the broker accepts from
	// this client (0: none).
	TopicAliasMaximum int
	// WildcardSubscriptionsAvailable, SubscriptionIDsAvailable and
	// SharedSubscriptionsAvailable report the optional subscription
	// features (true when not announced).
	WildcardSubscriptionsAvailable bool
	SubscriptionIDsAvailable       bool
	SharedSubscriptionsAvailable   bool
	// ServerKeepAlive is the keep alive the broker imposed, when
	// ServerKeepAliveSet; it replaces the client's.
	ServerKeepAlive    time.Duration
	ServerKeepAliveSet bool
	// SessionExpiry is the Session Expiry Interval the broker imposed,
	// when SessionExpirySet.
	SessionExpiry    time.Duration
	SessionExpirySet bool
	// AssignedClientID is the client identifier the broker chose, when the
	// client sent none; the client keeps it for every later connection.
	AssignedClientID string
	// ResponseInformation is the basis for response topics the broker
	// offers when asked (see WithRequestResponseInformation).
	ResponseInformation string
	// ServerReference names another server to use, when the broker sent
	// one.
	ServerReference string
	// AuthMethod is the enhanced authentication method in use, if any.
	AuthMethod string
}

// capabilitiesOf reads a CONNACK's properties.
func capabilitiesOf(p *wire.Props) Capabilities {
	c := Capabilities{
		MaximumQoS:                     2,
		RetainAvailable:                true,
		ReceiveMaximum:                 65535,
		WildcardSubscriptionsAvailable: true,
		SubscriptionIDsAvailable:       true,
		SharedSubscriptionsAvailable:   true,
	}
	if p.Has(wire.PropMaximumQoS) {
		c.MaximumQoS = QoS(p.MaximumQoS)
	}
	if p.Has(wire.PropRetainAvailable) {
		c.RetainAvailable = p.RetainAvailable == 1
	}
	if p.Has(wire.PropMaximumPacketSize) {
		c.MaximumPacketSize = int(p.MaximumPacketSize)
	}
	if p.Has(wire.PropReceiveMaximum) {
		c.ReceiveMaximum = int(p.ReceiveMaximum)
	}
	c.TopicAliasMaximum = int(p.TopicAliasMaximum)
	if p.Has(wire.PropWildcardAvailable) {
		c.WildcardSubscriptionsAvailable = p.WildcardAvailable == 1
	}
	if p.Has(wire.PropSubIDAvailable) {
		c.SubscriptionIDsAvailable = p.SubIDAvailable == 1
	}
	if p.Has(wire.PropSharedSubAvailable) {
		c.SharedSubscriptionsAvailable = p.SharedSubAvailable == 1
	}
	if p.Has(wire.PropServerKeepAlive) {
		c.ServerKeepAlive, c.ServerKeepAliveSet = time.Duration(p.ServerKeepAlive)*time.Second, true
	}
	if p.Has(wire.PropSessionExpiry) {
		c.SessionExpiry, c.SessionExpirySet = time.Duration(p.SessionExpiry)*time.Second, true
	}
	c.AssignedClientID = p.AssignedClientID
	c.ResponseInformation = p.ResponseInfo
	c.ServerReference = p.ServerReference
	c.AuthMethod = p.AuthMethod
	return c
}
