// Package mqttkeep is an MQTT v5 client that keeps its connection alive and
// its messages safe: it pings on its own, reports a dead link within one keep
// alive, reconnects on a stated schedule, restores its subscriptions, and
// loses no message it accepted, across reconnects and, with a [Store], across
// a crash. Package filestore is a durable Store; package mqttkeeptest gives
// tests a real broker and a fault proxy.
//
// # Quick start
//
//	// ctx is the caller's context.
//	client, err := mqttkeep.New(mqttkeep.WithServer("mqtt://127.0.0.1:1883"),
//		mqttkeep.WithSubscription("sensors/#", mqttkeep.QoS1, func(m *mqttkeep.Message) {
//			fmt.Printf("%s %s\n", m.Topic, m.Payload) // acknowledged when this returns
//		}))
//	if err != nil {
//		log.Fatal(err) // errors.Is(err, mqttkeep.ErrInvalidOption)
//	}
//	if err := client.Connect(ctx); err != nil {
//		log.Fatal(err) // a final refusal: *mqttkeep.ReasonCodeError
//	}
//	defer client.Drain(context.Background()) // handle what came, finish what was sent, close
//	err = client.Publish(ctx, "sensors/hall/temp", []byte("19.5"), mqttkeep.WithQoS(mqttkeep.QoS1))
//	log.Print(err) // nil once the broker acknowledged it, however many reconnects that took
//
// # Keepalive
//
// K is the keep alive (the broker's Server Keep Alive, else [WithKeepAlive])
// and T the ping timeout ([WithPingTimeout], K/2). The client sends PINGREQ
// when nothing was sent, or nothing received, for K/2. Every request owed an
// answer (PINGREQ, QoS 1/2 PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE) is a
// probe: if nothing at all arrives within T of the first probe since the last
// byte received, the link is dead ([ErrPingTimeout]). A probe counts from
// when it is queued, so a write stuck on a full socket cannot delay the
// verdict. A silent link death is thus reported within K/2 + T of the last
// byte (= K by default, inside the 1.5 K after which brokers drop a client),
// and within T of an unanswered request. Slow handlers never make a link look
// dead. K = 0 turns pings off; requests are still probes.
// [WithLowPowerKeepAlive] pings only when nothing was sent for K — one
// PINGREQ per K when idle, half the default's — for a bound of K + T
// ([ConnectEvent].DeadLinkBound gives the bound in force).
//
// # Delivery and acknowledgement
//
// Each subscription has a lane: its [MessageHandler] runs on a goroutine of
// its own, one message at a time in arrival order ([WithConcurrency]: n), so
// a slow handler delays only its subscription. A message goes once to each
// subscription the broker's Subscription Identifiers name, or else whose
// filter matches. Outbound messages leave in the order accepted; queued ones
// after the subscriptions are restored.
//
// A QoS 1/2 message is acknowledged once every handler it went to returned
// (with [WithManualAck]: called [Message.Ack]), in arrival order as MQTT
// requires, so one not yet acknowledged holds back the later ones; each
// holds a slot of [WithReceiveMaximum], and the broker stops sending while
// handlers are behind. A re-send of a message still being handled is not
// handed out again. A panicking handler is recovered, logged and counted, and
// its message acknowledged.
//
// A resumed session's backlog arrives right after CONNACK, before a program
// that calls Connect and then Subscribe has its handlers: so a QoS 1/2
// message that matches no subscription is held, unacknowledged, for the first
// later subscription that matches it. As it holds back later
// acknowledgements, [Client.Unsubscribe] a stale filter an earlier process
// left in the session (its held messages are acknowledged unhandled), or set
// [WithDefaultHandler]. Messages for filters unsubscribed from, and QoS 0 ones
// matching nothing, are counted and dropped.
//
//	at the end         received         held             accepted outbound
//	Drain              handled, acked   left to broker   completed
//	DrainUnsubscribe   handled, acked   left to broker   completed
//	Close              left to broker   left to broker   discarded (ErrClosed)
//
// Left to broker means unacknowledged: a broker that kept the session sends
// it again to the next connection that resumes it. [Client.Drain] keeps a
// resumable session: if it outlives the connection ([WithSessionExpiry] above
// zero), the subscriptions stay, the broker queues for the next process, and
// what arrives once Drain began is left to it; otherwise Drain unsubscribes
// first, as [Client.DrainUnsubscribe] always does (to leave for good, or
// scale down a shared subscription). [Client.Close] stops at once; running
// handler calls finish.
//
// # Durability
//
// Without a store the session (queued and in-flight messages, packet
// identifiers, inbound QoS 2 state) survives reconnects, not the process.
// With [WithStore] and package filestore, a QoS 1/2 message is on disk before
// Publish returns, and a later process on the store (same client ID,
// [WithCleanStart](false)) sends what the earlier one had not completed,
// before anything new: nothing accepted is lost, no QoS 2 message delivered
// twice. filestore.Open cuts a torn tail; other damage is a
// *filestore.CorruptError, and filestore.Salvage keeps every intact record.
//
// # Reconnecting
//
// The client reconnects until Close ([ReconnectPolicy]). After a failure
// below MQTT (the dial failed, or a connection that carried an exchange was
// lost) it retries on a 900 ms grid at a phase of its own: back within one
// interval of the broker, a process's clients spread evenly. After one at
// MQTT (a retryable CONNACK refusal, no CONNACK in time, a connection
// dropped before any exchange or broken by the broker) it waits [Backoff]
// (full jitter, 500 ms doubling up to 60 s). With several servers, a failed
// attempt tries the next untried one at once, a lost connection goes on
// with the next (on a 450 ms grid), and the client stays where it works. While dials go
// unanswered (a partition) fresh ones overlap only for 10 s, in pairs every
// 2 s (a heal is reached within 0.5 s), then one per attempt, attempts 5 to
// 10 s apart: 14-15 dials in 60 s ([Stats].Dials). 0x9C or 0x9D redirect
// (3 in a row at most). A final refusal ([ReasonCodeError.Final], a
// certificate that does not verify) or a takeover (DISCONNECT 0x8E) stops
// the client ([StateStopped]).
//
// # MQTT 3.1.1
//
// [WithProtocolVersion] defaults to [ProtocolAuto]: MQTT 5, and 3.1.1 at
// once with a broker that refuses 5 (RabbitMQ 3.10, ActiveMQ 5.17; tested
// on both). The guarantees hold on 3.1.1 where it can carry them:
// keepalive and its bound, backoff, typed refusals (return codes read as
// MQTT 5 reason codes), resubscription, the store, manual ack, Drain and
// the held backlog. What 3.1.1 cannot carry (properties, subscription
// options, request/response, will properties and delay, enhanced
// authentication) fails with [ErrNotSupported] naming it, at call time on
// a 3.1.1 connection or when a queued message or subscription meets one.
// What only tunes the link is dropped: topic aliases are not used, and
// Receive Maximum, Maximum Packet Size and Request Problem Information
// cannot be announced (the client still enforces its own limits).
// 3.1.1 has no session expiry: a fresh persistent session takes a Clean
// Session connection then a persistent one, and Close ends a session that
// should end with one more Clean Session connection. It has no takeover
// DISCONNECT: a broker closes the old connection, which the client takes
// for a loss and backs off from. Without Subscription Identifiers a copy is
// routed by topic to every matching handler: one call per handler with
// brokers that send one copy per client (RabbitMQ, Mosquitto, mochi), one
// per copy with those that send one per subscription (ActiveMQ). A broker
// that answers QoS 2 with PUBACK (RabbitMQ) fails that publish with
// ErrNotSupported and caps [Capabilities].MaximumQoS at 1.
//
// # Errors
//
// Errors start with "mqttkeep:" and wrap a sentinel ([errors.Is]), a
// [*ReasonCodeError] ([errors.As]), a context error or the network error. Bad
// input is refused before anything is sent. [DisconnectEvent].Err gives a
// loss's cause: [ErrPingTimeout], [ErrWriteTimeout], [ErrMalformedPacket],
// [ErrProtocolViolation], a *ReasonCodeError or a network error.
//
// # Observability
//
// Every PUBLISH received counts in [Stats].InPublishes, then in one of:
//
//	InHandlerCalls    handed to handlers (one call per subscription)
//	InRedelivered     a re-send of a message still being (QoS 2: already) handled
//	InDroppedQoS0     QoS 0, WithMessageBuffer full
//	InUnsubscribed    QoS 0 matching no subscription; QoS 1/2 matching only
//	                  filters unsubscribed from (acknowledged unhandled)
//	InHeld            held (a gauge; released, it moves to another row)
//	InAbandoned       Close or Drain came first (QoS 1/2: left to broker)
//
// InHandlerPanics and InOverReceiveMaximum count as named. OutQueued
// and OutInFlight (with bytes) are gauges; OutRestored counts what Connect
// found in the store, OutDiscarded what was dropped with no caller to tell
// (queued QoS 0 at Close, what a new broker refuses), OutPoisoned
// [ErrMessagePoisoned] failures, SessionsAbandoned resumed sessions given up.
//
// Hooks ([Client.OnConnect], OnDisconnect, OnReconnecting, OnPing) run in
// order on one goroutine, never under a lock: a slow hook delays later ones,
// never the connection; a panic is logged. [WithLogger] gets pings at Debug,
// connects at Info, losses and refusals at Warn, with "client_id". No
// password is ever in a log, error, Stats or String.
//
// # Buffer limits
//
//	option              holds                             default         when full
//	WithQueueLimits     accepted, not yet written         10,000, 8 MiB   ErrQueueFull (a connected
//	                    (bytes: topic+payload+properties)                 Publish waits instead)
//	WithInflightLimits  QoS 1/2 written, unacknowledged   65,535, 16 MiB  the rest stay queued
//	WithReceiveMaximum  QoS 1/2 received, unacknowledged  128             broker waits; one more is kept,
//	                                                                      reading paused (0x93 after
//	                                                                      the write timeout)
//	WithMessageBuffer   QoS 0 waiting for handlers        8,192           dropped (InDroppedQoS0)
//	WithMaxPacketSize   one received packet (bounds the   256 MiB         ErrPacketTooLarge, unread
//	                    bytes of the two rows above)
//
// # The lock and the goroutines
//
// The Client API calls the session, which outlives connections and holds the
// one lock over packet identifiers, the outbound queue and in-flight set,
// inbound QoS 1/2 state, routing, lanes, acknowledgement order and store
// steps; the session calls the link, one live connection (reader, writer,
// write deadlines, keepalive timer, receive window), which calls the codec,
// internal/wire. User code never runs under the lock. Goroutines: the
// supervisor (Connect to Close: dial, CONNECT, serve, loss, hooks, policy); a
// reader and a writer per connection, the supervisor's; an attempt's dials,
// ended by its ctx (a [DialFunc] must honour it); a lane's, while it has
// messages; the hook goroutine while events wait; the store's persister
// while steps wait; the keepalive timer's brief callback. Close returns once all have ended (called from a
// callback, it does not wait for callbacks).
package mqttkeep
