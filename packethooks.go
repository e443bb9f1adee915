package mqttkeep

import (
	"fmt"
	"math"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// ConnectPacket is what [WithConnectPacket] may edit in a CONNECT.
type ConnectPacket struct {
	// Server is the broker's URL without user information (read only).
	Server string
	// RequestProblemInformation: true by default (else mochi drops user properties).
	RequestProblemInformation bool
	// UserProperties go in CONNECT's properties.
	UserProperties []UserProperty
}

// DisconnectPacket is what [WithDisconnectPacket] may edit.
type DisconnectPacket struct {
	// ReasonCode is 0x00, or 0x04 from CloseWithWill.
	ReasonCode ReasonCode
	// SessionExpiry, if SessionExpirySet, replaces the session expiry (0 ends it).
	SessionExpiry    time.Duration
	SessionExpirySet bool
	// ReasonString and UserProperties go in DISCONNECT's properties.
	ReasonString   string
	UserProperties []UserProperty
}

// WithConnectPacket has edit change each CONNECT ([ErrInvalidOption] if bad).
// Default: none.
func WithConnectPacket(edit func(p *ConnectPacket)) Option {
	return optionFunc(func(c *config) error {
		if edit == nil {
			return optionError("WithConnectPacket", "nil function")
		}
		c.editConnect = edit
		return nil
	})
}

// WithDisconnectPacket has edit change the final DISCONNECT. Default: none.
func WithDisconnectPacket(edit func(p *DisconnectPacket)) Option {
	return optionFunc(func(c *config) error {
		if edit == nil {
			return optionError("WithDisconnectPacket", "nil function")
		}
		c.editDisconnect = edit
		return nil
	})
}

// editConnectLocked applies the CONNECT hook to cp.
func (c *Client) editConnect(cp *wire.Connect, server string) error {
	edit := c.cfg.editConnect
	if edit == nil {
		return nil
	}
	p := ConnectPacket{
		Server:                    server,
		RequestProblemInformation: cp.Props.RequestProblemInfo == 1,
	}
	for _, u := range cp.Props.User {
		p.UserProperties = append(p.UserProperties, UserProperty(u))
	}
	edit(&p)
	cp.Props.RequestProblemInfo = boolByte(p.RequestProblemInformation)
	cp.Props.Mark(wire.PropRequestProblemInfo)
	cp.Props.User = nil
	cp.Props.Set &^= 1 << wire.PropUser
	if len(p.UserProperties) > 0 {
		cp.Props.Mark(wire.PropUser)
		for _, u := range p.UserProperties {
			cp.Props.User = append(cp.Props.User, wire.UserProperty(u))
		}
	}
	if err := cp.Props.Check(); err != nil {
		return optionError("WithConnectPacket", "%v", err)
	}
	return nil
}

// editDisconnect applies the DISCONNECT hook to d.
func (c *Client) editDisconnect(d *wire.Disconnect) {
	edit := c.cfg.editDisconnect
	if edit == nil {
		return
	}
	p := DisconnectPacket{
		ReasonCode:       ReasonCode(d.Reason),
		SessionExpiry:    time.Duration(d.Props.SessionExpiry) * time.Second,
		SessionExpirySet: d.Props.Has(wire.PropSessionExpiry),
		ReasonString:     d.Props.ReasonString,
	}
	edit(&p)
	nd := wire.Disconnect{Reason: byte(p.ReasonCode)}
	if p.SessionExpirySet && p.SessionExpiry >= 0 && p.SessionExpiry <= math.MaxUint32*time.Second {
		nd.Props.Mark(wire.PropSessionExpiry)
		nd.Props.SessionExpiry = uint32(p.SessionExpiry / time.Second)
	}
	if p.ReasonString != "" {
		nd.Props.Mark(wire.PropReasonString)
		nd.Props.ReasonString = p.ReasonString
	}
	for _, u := range p.UserProperties {
		nd.Props.Mark(wire.PropUser)
		nd.Props.User = append(nd.Props.User, wire.UserProperty(u))
	}
	if err := nd.Props.Check(); err != nil {
		c.cfg.logger.Warn("mqttkeep: WithDisconnectPacket made an invalid DISCONNECT; sending the original", "err", fmt.Sprint(err))
		return
	}
	*d = nd
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
