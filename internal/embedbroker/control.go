package embedbroker

import (
	"errors"
	"fmt"
	"sync/atomic"

	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// Refuse makes the broker refuse every following CONNECT with a CONNACK
// carrying the MQTT v5 reason code code, then close the connection.
// Refuse(0) accepts connections again. It panics if code is between 0x01
// and 0x7F, which are not failure codes.
func (b *Broker) Refuse(code byte) {
	if code != 0 && code < 0x80 {
		panic(fmt.Sprintf("embedbroker: Refuse(%#x): not a CONNACK failure code", code))
	}
	b.refRef.Store(nil)
	b.refuse.Store(uint32(code))
}

// Redirect is Refuse with a Server Reference property in the CONNACK (for
// 0x9C use another server, 0x9D server moved). Refuse(0) accepts
// connections again.
func (b *Broker) Redirect(code byte, serverReference string) {
	if code < 0x80 {
		panic(fmt.Sprintf("embedbroker: Redirect(%#x): not a CONNACK failure code", code))
	}
	b.refRef.Store(&serverReference)
	b.refuse.Store(uint32(code))
}

// Publish sends a non-retained message from the broker itself to the
// clients subscribed to topic; qos caps the QoS of the deliveries.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	return srv.Publish(topic, payload, false, qos)
}

// Subscribe calls handler with every message published to a topic matching
// filter, synchronously, on the goroutine that delivers the message (the
// publishing client's, or Publish's caller). It lasts until the mochi
// server stops (Stop, Restart or Close).
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	id := int(b.subID.Add(1))
	return srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, pk.Payload)
	})
}

// Dropped returns how many messages for clients mochi dropped because the
// client's outbound queue was full, across restarts.
func (b *Broker) Dropped() int64 {
	n := b.dropped.Load()
	if srv, err := b.server(); err == nil {
		n += atomic.LoadInt64(&srv.Info.MessagesDropped)
	}
	return n
}

// DisconnectClient sends a DISCONNECT with reasonCode to the connected
// client clientID and then closes its connection.
func (b *Broker) DisconnectClient(clientID string, reasonCode byte) error {
	return b.DisconnectClientTo(clientID, reasonCode, "")
}

// DisconnectClientTo is DisconnectClient with a Server Reference property
// (for 0x9C use another server, 0x9D server moved); an empty reference is
// left out.
func (b *Broker) DisconnectClientTo(clientID string, reasonCode byte, serverReference string) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	cl, ok := srv.Clients.Get(clientID)
	if !ok || cl.Closed() || cl.Net.Inline {
		return fmt.Errorf("client %q is not connected", clientID)
	}
	code := reasonCodeFor(reasonCode)
	if serverReference == "" {
		err = srv.DisconnectClient(cl, code)
		if errors.Is(err, code) { // mochi returns a failure code itself after sending it
			return nil
		}
		return err
	}
	out := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ServerReference: serverReference},
	}
	err = cl.WritePacket(out)
	cl.Stop(code)
	return err
}

// control is the broker's own mochi hook: it lets every client in, applies
// Refuse, Redirect and the options. One per mochi server.
type control struct {
	mqtt.HookBase
	b   *Broker
	srv *mqtt.Server
}

func (h *control) ID() string { return "embedbroker" }

func (h *control) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck:
		return true
	case mqtt.OnPacketEncode:
		return h.b.cfg.maxPacketSize > 0
	}
	return false
}

// OnConnect runs after mochi validated a CONNECT and before it
// authenticates the client. An error returned here makes mochi close the
// connection without a CONNACK, so a refusal sends its CONNACK itself.
func (h *control) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	if code := byte(h.b.refuse.Load()); code != 0 {
		rc := reasonCodeFor(code)
		var props *packets.Properties
		if ref := h.b.refRef.Load(); ref != nil {
			props = &packets.Properties{ServerReference: *ref}
		}
		_ = h.srv.SendConnack(cl, rc, false, props)
		return rc
	}
	if h.b.cfg.serverKeepAliveSet {
		// SendConnack announces the keep alive and mochi sets the
		// connection deadline from it.
		cl.State.ServerKeepalive = true
		cl.State.Keepalive = h.b.cfg.serverKeepAlive
	}
	return nil
}

// OnConnectAuthenticate lets every client in: mochi refuses all of them
// (0x86) unless a hook allows them.
func (h *control) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck allows every publish and subscription: mochi denies them
// unless a hook allows them.
func (h *control) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// OnPacketEncode adds Maximum Packet Size to successful CONNACKs, which
// mochi does not announce by itself.
func (h *control) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode < 0x80 {
		pk.Properties.MaximumPacketSize = h.b.cfg.maxPacketSize
	}
	return pk
}

// reasonCodes maps reason code bytes to mochi's codes, so that packets
// carry mochi's reason strings and v3 clients get mochi's v3 translations.
var reasonCodes = func() map[byte]packets.Code {
	m := make(map[byte]packets.Code)
	for _, c := range []packets.Code{
		packets.CodeDisconnect,
		packets.CodeDisconnectWillMessage,
		packets.ErrUnspecifiedError,
		packets.ErrMalformedPacket,
		packets.ErrProtocolViolation,
		packets.ErrImplementationSpecificError,
		packets.ErrUnsupportedProtocolVersion,
		packets.ErrClientIdentifierNotValid,
		packets.ErrBadUsernameOrPassword,
		packets.ErrNotAuthorized,
		packets.ErrServerUnavailable,
		packets.ErrServerBusy,
		packets.ErrBanned,
		packets.ErrServerShuttingDown,
		packets.ErrBadAuthenticationMethod,
		packets.ErrKeepAliveTimeout,
		packets.ErrSessionTakenOver,
		packets.ErrTopicFilterInvalid,
		packets.ErrTopicNameInvalid,
		packets.ErrReceiveMaximum,
		packets.ErrTopicAliasInvalid,
		packets.ErrPacketTooLarge,
		packets.ErrMessageRateTooHigh,
		packets.ErrQuotaExceeded,
		packets.ErrAdministrativeAction,
		packets.ErrPayloadFormatInvalid,
		packets.ErrRetainNotSupported,
		packets.ErrQosNotSupported,
		packets.ErrUseAnotherServer,
		packets.ErrServerMoved,
		packets.ErrSharedSubscriptionsNotSupported,
		packets.ErrConnectionRateExceeded,
		packets.ErrMaxConnectTime,
		packets.ErrSubscriptionIdentifiersNotSupported,
		packets.ErrWildcardSubscriptionsNotSupported,
	} {
		m[c.Code] = c
	}
	return m
}()

func reasonCodeFor(code byte) packets.Code {
	if c, ok := reasonCodes[code]; ok {
		return c
	}
	return packets.Code{Code: code, Reason: fmt.Sprintf("reason code %#x", code)}
}

// InflightFor returns how many QoS 1/2 messages the broker holds for
// clientID's session (queued or in flight), 0 for an unknown client. The
// store measurements count what a restart restored with it.
func (b *Broker) InflightFor(clientID string) int {
	srv, err := b.server()
	if err != nil {
		return 0
	}
	if cl, ok := srv.Clients.Get(clientID); ok {
		return cl.State.Inflight.Len()
	}
	return 0
}
