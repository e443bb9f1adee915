package embedbroker

import (
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/mqttkeep/mqttkeep"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
	"github.com/mqttkeep/mqttkeep/internal/mochi/hooks/storage"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// What the store hook keeps, under keys of a kind, a NUL and the rest
// (MQTT strings hold no U+0000, so the parts cannot run together):
//
//	"CL\x00" client                 a persistent session's client
//	"SUB\x00" client "\x00" filter  one of its subscriptions
//	"IFM\x00" client "\x00" id      one of its QoS 1/2 messages in flight or queued
//	"RET\x00" topic                 a retained message
//
// The values are mochi's storage types, as they marshal themselves (JSON).
const (
	kindClient   = "CL"
	kindSub      = "SUB"
	kindInflight = "IFM"
	kindRetained = "RET"
)

func clientKey(client string) string { return kindClient + "\x00" + client }

func subKey(client, filter string) string { return kindSub + "\x00" + client + "\x00" + filter }

func inflightKey(client string, id uint16) string {
	return kindInflight + "\x00" + client + "\x00" + strconv.Itoa(int(id))
}

func retainedKey(topic string) string { return kindRetained + "\x00" + topic }

// clientOfKey returns the client whose session the key belongs to.
func clientOfKey(key string) (string, bool) {
	kind, rest, _ := strings.Cut(key, "\x00")
	switch kind {
	case kindClient:
		return rest, true
	case kindSub, kindInflight:
		client, _, ok := strings.Cut(rest, "\x00")
		return client, ok
	}
	return "", false
}

// storeHook is the mochi storage hook of WithDataDir: it keeps in a
// mqttkeep.Store (see keyedStore) what a restarted broker needs to carry
// on, and gives it back to mochi when the server starts (the Stored…
// hooks):
//
//   - the sessions that outlive their connection (MQTT 5 Session Expiry
//     Interval above 0, or MQTT 3 Clean Session 0): the client, its
//     subscriptions, and the QoS 1/2 messages in flight to it or queued
//     for it while it is away, with the PUBREC state of QoS 2 messages it
//     sent; a session that ends with its connection is not kept;
//   - retained messages.
//
// Durability: every change is queued, and these calls make everything
// queued so far durable (fsync) before returning: the OnQosPublish of the
// PUBACK or PUBREC for a client's QoS 1/2 message, which mochi (with
// internal/mochi's patch 04) calls after the message went to its
// subscribers' sessions and the retained store and before it writes the
// acknowledgement; OnSubscribed and OnUnsubscribed, which mochi calls
// before it writes the SUBACK or UNSUBACK; and OnSessionEstablished (just
// after the CONNACK). So what the broker acknowledged survives a crash of
// the process or the machine. The rest (a subscriber's acknowledgement, a
// QoS 0 retained message, a session ending) reaches the disk with the next
// of those, within maxPendingChanges or maxPendingBytes, or when the
// server stops; a crash before that may bring back messages a subscriber
// had acknowledged (QoS 1/2 allow a duplicate after a crash). A session
// that ends is dropped durably at once. When a sync fails (a full or broken disk) the hook
// closes the client's connection, so that mochi's acknowledgement is
// never written, and logs the error; a restart reopens the store.
type storeHook struct {
	mqtt.HookBase
	st  mqttkeep.Store // open; Init reads it, Stop closes it
	log *slog.Logger
	kv  *keyedStore

	// What Init loaded, for the Stored… hooks.
	clients  []storage.Client
	subs     []storage.Subscription
	inflight []storage.Message
	retained []storage.Message
}

func (h *storeHook) ID() string { return "data-dir" }

func (h *storeHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnWillSent,
		mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnRetainMessage, mqtt.OnRetainedExpired,
		mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.StoredClients, mqtt.StoredSubscriptions, mqtt.StoredInflightMessages, mqtt.StoredRetainedMessages:
		return true
	}
	return false
}

// Init reads the store (closing it if that fails). A subscription or
// message whose session is not there (it ended, or it was never
// complete) is dropped.
func (h *storeHook) Init(any) error {
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var subs []storage.Subscription
	var inflight []storage.Message
	var err error
	h.kv, err = openKeyed(h.st, func(key string, value []byte) error {
		kind, _, _ := strings.Cut(key, "\x00")
		switch kind {
		case kindClient:
			var c storage.Client
			if err := c.UnmarshalBinary(value); err != nil {
				return fmt.Errorf("client: %w", err)
			}
			h.clients = append(h.clients, c)
		case kindSub:
			var s storage.Subscription
			if err := s.UnmarshalBinary(value); err != nil {
				return fmt.Errorf("subscription: %w", err)
			}
			subs = append(subs, s)
		case kindInflight:
			var m storage.Message
			if err := m.UnmarshalBinary(value); err != nil {
				return fmt.Errorf("message in flight: %w", err)
			}
			inflight = append(inflight, m)
		case kindRetained:
			var m storage.Message
			if err := m.UnmarshalBinary(value); err != nil {
				return fmt.Errorf("retained message: %w", err)
			}
			h.retained = append(h.retained, m)
		default:
			return fmt.Errorf("unknown record %q", key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the data directory: %w", err)
	}
	kept := make(map[string]bool, len(h.clients))
	for _, c := range h.clients {
		kept[c.ID] = true
	}
	for _, s := range subs {
		if kept[s.Client] {
			h.subs = append(h.subs, s)
		} else {
			h.kv.del(subKey(s.Client, s.Filter))
		}
	}
	for _, m := range inflight {
		if kept[m.Client] {
			h.inflight = append(h.inflight, m)
		} else {
			h.kv.del(inflightKey(m.Client, m.PacketID))
		}
	}
	return nil
}

// Stop makes every change durable and closes the store.
func (h *storeHook) Stop() error {
	if h.kv == nil {
		return nil // Init failed and closed it
	}
	return h.kv.close()
}

func (h *storeHook) StoredClients() ([]storage.Client, error)             { return h.clients, nil }
func (h *storeHook) StoredSubscriptions() ([]storage.Subscription, error) { return h.subs, nil }
func (h *storeHook) StoredInflightMessages() ([]storage.Message, error)   { return h.inflight, nil }
func (h *storeHook) StoredRetainedMessages() ([]storage.Message, error)   { return h.retained, nil }

// persistent reports whether cl's session outlives its connection, as
// mochi decides when the connection ends.
func persistent(cl *mqtt.Client) bool {
	if cl.Net.Inline {
		return false
	}
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

// replaced reports whether a newer connection with cl's client ID took
// over (or started afresh): what the old client's connection does as it
// ends must not touch the store, which now holds the newer one's session.
func replaced(cl *mqtt.Client) bool {
	return cl.IsTakenOver() || errors.Is(cl.StopCause(), packets.ErrSessionTakenOver)
}

// queued handles a put or del that filled the queue.
func (h *storeHook) queued(full bool) {
	if full {
		h.sync(nil, "flushing a full queue")
	}
}

// sync makes every queued change durable. If that fails, it closes cl's
// connection (when cl is not nil), so that mochi's acknowledgement is not
// written.
func (h *storeHook) sync(cl *mqtt.Client, what string) {
	err := h.kv.sync()
	if err == nil {
		return
	}
	if cl != nil && !cl.Net.Inline {
		h.log.Error("broker: cannot store; closing the connection", "client", cl.ID, "while", what, "error", err)
		cl.Stop(packets.ErrImplementationSpecificError)
		return
	}
	h.log.Error("broker: cannot store", "while", what, "error", err)
}

// OnSessionEstablished stores a persistent session's client, or drops a
// session that now ends with its connection.
func (h *storeHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if cl.Net.Inline {
		return
	}
	if !persistent(cl) {
		h.dropSession(cl)
		return
	}
	h.putClient(cl)
	h.sync(cl, "storing a session")
}

// dropSession drops cl's session, if it was kept, for good: a session
// that came back after it ended would queue messages for nobody.
func (h *storeHook) dropSession(cl *mqtt.Client) {
	if h.kv.delClient(cl.ID) {
		h.sync(nil, "dropping a session")
	}
}

// OnWillSent stores the client without the will mochi sent.
func (h *storeHook) OnWillSent(cl *mqtt.Client, _ packets.Packet) {
	if persistent(cl) && !replaced(cl) {
		h.putClient(cl)
	}
}

// OnDisconnect drops a session that ends with its connection.
func (h *storeHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire && !cl.Net.Inline && !replaced(cl) {
		h.dropSession(cl)
	}
}

// OnClientExpired drops a session whose expiry interval has passed.
func (h *storeHook) OnClientExpired(cl *mqtt.Client) {
	h.dropSession(cl)
}

func (h *storeHook) putClient(cl *mqtt.Client) {
	props := cl.Properties.Props.Copy(false)
	c := storage.Client{
		ID:              cl.ID,
		T:               storage.ClientKey,
		Remote:          cl.Net.Remote,
		Listener:        cl.Net.Listener,
		Username:        cl.Properties.Username,
		Clean:           cl.Properties.Clean,
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval:     props.SessionExpiryInterval,
			SessionExpiryIntervalFlag: props.SessionExpiryIntervalFlag,
			AuthenticationMethod:      props.AuthenticationMethod,
			AuthenticationData:        props.AuthenticationData,
			RequestProblemInfo:        props.RequestProblemInfo,
			RequestProblemInfoFlag:    props.RequestProblemInfoFlag,
			RequestResponseInfo:       props.RequestResponseInfo,
			ReceiveMaximum:            props.ReceiveMaximum,
			TopicAliasMaximum:         props.TopicAliasMaximum,
			User:                      props.User,
			MaximumPacketSize:         props.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	}
	h.put(clientKey(cl.ID), c)
}

// OnSubscribed stores the granted subscriptions of a persistent session
// before mochi writes the SUBACK.
func (h *storeHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if !persistent(cl) {
		return
	}
	for i, f := range pk.Filters {
		if i >= len(reasonCodes) || reasonCodes[i] >= packets.ErrUnspecifiedError.Code {
			continue // refused: not a subscription
		}
		h.put(subKey(cl.ID, f.Filter), storage.Subscription{
			ID:                subKey(cl.ID, f.Filter),
			T:                 storage.SubscriptionKey,
			Client:            cl.ID,
			Filter:            f.Filter,
			Identifier:        f.Identifier,
			RetainHandling:    f.RetainHandling,
			Qos:               reasonCodes[i],
			RetainAsPublished: f.RetainAsPublished,
			NoLocal:           f.NoLocal,
		})
	}
	h.sync(cl, "storing a subscription")
}

// OnUnsubscribed drops subscriptions before mochi writes the UNSUBACK,
// and those of a session a Clean Start discards. (mochi does not call it
// for a session taken over: its subscriptions go on.)
func (h *storeHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	for _, f := range pk.Filters {
		h.kv.del(subKey(cl.ID, f.Filter))
	}
	if persistent(cl) {
		h.sync(cl, "dropping a subscription")
	}
}

// OnRetainMessage stores or (r == -1) drops the retained message of a
// topic.
func (h *storeHook) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if r == -1 {
		h.queued(h.kv.del(retainedKey(pk.TopicName)))
		return
	}
	m := message(pk)
	m.ID, m.T, m.Client = retainedKey(pk.TopicName), storage.RetainedKey, cl.ID
	h.put(m.ID, m)
}

// OnRetainedExpired drops an expired retained message.
func (h *storeHook) OnRetainedExpired(topic string) {
	h.queued(h.kv.del(retainedKey(topic)))
}

// OnQosPublish stores a QoS 1/2 message for a persistent session (or its
// PUBREC, for a QoS 2 message the client sent), and, for the PUBACK or
// PUBREC of a message a client sent, makes everything durable first.
func (h *storeHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, _ int) {
	switch pk.FixedHeader.Type {
	case packets.Puback: // nothing to keep: the flow ends with this PUBACK
		h.sync(cl, "storing a message before its PUBACK")
	case packets.Pubrec:
		if persistent(cl) {
			h.putInflight(cl, pk, sent)
		}
		h.sync(cl, "storing a message before its PUBREC")
	case packets.Publish, packets.Pubrel:
		if persistent(cl) {
			h.putInflight(cl, pk, sent)
		}
	}
}

func (h *storeHook) putInflight(cl *mqtt.Client, pk packets.Packet, sent int64) {
	m := message(pk)
	m.ID, m.T, m.Client, m.PacketID, m.Sent = inflightKey(cl.ID, pk.PacketID), storage.InflightKey, cl.ID, pk.PacketID, sent
	h.put(m.ID, m)
}

// OnQosComplete drops a message whose flow ended.
func (h *storeHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	// A session taken over keeps its messages: mochi clears them from the
	// old client (after marking it taken over) once the new one has a
	// copy. A Clean Start clears them before marking it: they go.
	if !cl.Net.Inline && !cl.IsTakenOver() {
		h.queued(h.kv.del(inflightKey(cl.ID, pk.PacketID)))
	}
}

// OnQosDropped drops a message mochi gave up on (see OnQosComplete).
func (h *storeHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	h.OnQosComplete(cl, pk)
}

// put queues a record of v.
func (h *storeHook) put(key string, v encoding.BinaryMarshaler) {
	b, err := v.MarshalBinary()
	if err != nil { // mochi's storage types always marshal
		h.log.Error("broker: cannot encode a record", "key", key, "error", err)
		return
	}
	h.queued(h.kv.put(key, b))
}

// message is the storable form of pk.
func message(pk packets.Packet) storage.Message {
	return storage.Message{
		FixedHeader: pk.FixedHeader,
		TopicName:   pk.TopicName,
		Payload:     pk.Payload,
		Created:     pk.Created,
		Origin:      pk.Origin,
		Properties: storage.MessageProperties{
			PayloadFormat:          pk.Properties.PayloadFormat,
			PayloadFormatFlag:      pk.Properties.PayloadFormatFlag,
			MessageExpiryInterval:  pk.Properties.MessageExpiryInterval,
			ContentType:            pk.Properties.ContentType,
			ResponseTopic:          pk.Properties.ResponseTopic,
			CorrelationData:        pk.Properties.CorrelationData,
			SubscriptionIdentifier: pk.Properties.SubscriptionIdentifier,
			TopicAlias:             pk.Properties.TopicAlias,
			User:                   pk.Properties.User,
		},
	}
}
