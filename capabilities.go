package mqttkeep

import (
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Capabilities is what the broker's CONNACK announced (or MQTT's defaults).
type Capabilities struct {
	// ProtocolVersion is the connection's MQTT version: MQTT5, or MQTT311
	// with a broker that refused 5. A 3.1.1 broker announces nothing else
	// (the fields below keep MQTT 5's defaults; no subscription IDs).
	ProtocolVersion ProtocolVersion
	// MaximumQoS is the highest QoS it accepts (higher: [ErrInvalidQoS]);
	// 1 once a 3.1.1 broker answered QoS 2 with PUBACK.
	MaximumQoS          QoS
	RetainAvailable     bool   // it keeps retained messages
	MaximumPacketSize   int    // the largest packet it accepts (0: MQTT's limit)
	ReceiveMaximum      int    // QoS 1/2 messages it takes unacknowledged
	TopicAliasMaximum   int    // topic aliases it takes from the client
	AssignedClientID    string // the client identifier it chose, if any
	ResponseInformation string // its response topic prefix, if asked for
	ServerReference     string // another server to use, if any
	AuthMethod          string // the enhanced authentication method, if any
	// The optional subscription features it offers:
	WildcardSubscriptionsAvailable bool
	SubscriptionIDsAvailable       bool
	SharedSubscriptionsAvailable   bool
	// ServerKeepAlive, if set, replaces the client's keep alive;
	// SessionExpiry, if set, is the session expiry it imposed.
	ServerKeepAlive    time.Duration
	ServerKeepAliveSet bool
	SessionExpiry      time.Duration
	SessionExpirySet   bool
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
