// Package mqttkeeptest provides an MQTT v5 broker and a TCP fault proxy for
// the tests of programs that use MQTT, as net/http/httptest does for HTTP.
// Both run in the test's process, on 127.0.0.1 or in memory; nothing is
// mocked: the broker is a real one (mochi-mqtt v2.7.9) and the proxy moves
// real bytes between real sockets.
//
// # Constructors
//
// [NewBroker], [NewPipeBroker] and [NewProxy] take the test's testing.TB:
// they fail the test if they cannot start and close what they started when
// the test ends (t.Cleanup). [StartBroker], [StartPipeBroker] and
// [StartProxy] do the same without a testing.TB, for examples and programs:
// they return an error, and the caller must call Close.
//
// # Broker
//
// A [Broker] lets every client in, keeps sessions in memory (or, with
// [WithDataDir], in a directory that a restart or another process finds
// again), and records what it reads and writes (CONNECTs, PINGREQs, packet counts,
// payloads) so a test can check what its client sent. It can simulate what
// a client meets in production:
//
//   - a crash and a restart without persistence ([Broker.Stop],
//     [Broker.Restart]: same port, every session lost), or with it
//     ([WithDataDir]: what the broker acknowledged is kept);
//   - a restart with persistence ([Broker.Bounce]: sessions kept);
//   - refusals with any CONNACK reason code ([Broker.Refuse]) or a
//     redirect ([Broker.Redirect]);
//   - a server-side DISCONNECT ([Broker.DisconnectClient]);
//   - a Server Keep Alive that overrides the client's
//     ([WithServerKeepAlive]) and a Maximum Packet Size ([WithMaximumPacketSize]);
//   - TLS and WebSocket listeners ([WithTLS], [WithWebSocket]).
//
// A broker from [NewPipeBroker] opens no socket: clients reach it through
// [Broker.Pipe], an in-memory net.Pipe. Created inside a testing/synctest
// bubble, it lives in the bubble, so fake time drives keep alives, ping
// timeouts and the broker's own deadlines: a test of a 30 s keep alive runs
// in milliseconds.
//
// # Proxy
//
// A [Proxy] sits between a client and a broker (or any TCP server) and
// injects the faults that break long-lived connections: a silent link death
// ([Proxy.Blackhole]: bytes read and dropped both ways, sockets left open,
// no FIN or RST, as when a NAT entry expires or a cable is pulled), a
// receiver that stopped reading ([Proxy.Stall]), latency ([Proxy.Delay]),
// a TCP reset ([Proxy.Reset]), a normal close ([Proxy.CloseAll]) and a
// broker that is down ([Proxy.Refuse]).
//
// # Limits of the embedded broker
//
// The broker is mochi-mqtt v2.7.9 with the fixes below. Its known defects
// show up in tests as failures that are the broker's, not the client's:
//
//  1. It strips the user properties from the PUBLISH packets it forwards to
//     a subscriber that connected with Request Problem Information = 0
//     (a client that wants user properties must ask for problem
//     information, the MQTT default; paho.golang sends 0 whenever it is
//     given ConnectProperties with RequestProblemInfo false).
//  2. A session takeover (a second connection with the same client ID)
//     loses the messages published to that client ID during the hand-over.
//  3. It announces no Maximum Packet Size unless one is set
//     ([WithMaximumPacketSize]).
//  4. It keeps one packet-identifier map for both directions: a client's
//     SUBSCRIBE or UNSUBSCRIBE whose packet identifier equals that of a
//     QoS 1/2 message the broker sent and the client has not acknowledged
//     yet is refused with 0x91 (packet identifier in use); a PUBLISH with
//     such an identifier silently cancels the broker's own in-flight
//     message.
//  5. It sends the messages it had queued for a client before that
//     client's UNSUBSCRIBE after its UNSUBACK (it writes acknowledgements
//     directly and messages through a queue), so a client sees messages
//     for a filter it has just unsubscribed.
//  6. Retained messages it sends on SUBSCRIBE carry no Subscription
//     Identifier; it answers a re-sent QoS 2 PUBLISH whose PUBREC it
//     holds with PUBREC 0x91 instead of 0x00, and re-sends every PUBREC it
//     holds when a session resumes; it drops a will's properties but
//     the delay and user properties; it announces no Topic Alias Maximum
//     (so no client may send it aliases), and a resumed session re-sends
//     queued messages with the topic aliases of an earlier connection; a
//     message held back for a client's Receive Maximum that expires while
//     it waits is still sent, with a Message Expiry Interval of 1 s.
//  7. It keeps at most 8,192 QoS 1/2 messages per session (more are
//     dropped) and drops a message queued, in flight or retained for
//     longer than a day (its maximum message expiry).
//  8. With [WithDataDir], after a restart: a session's expiry interval
//     counts from the restart, a retained message's own expiry is
//     forgotten (the day of limit 7 remains), and the wills of clients
//     that were connected are not published.
//
// The kit runs a copy of mochi v2.7.9 (internal/mochi, upstream plus
// patch files) with fixes of its own, so these do not happen here: two
// read locks taken twice (Inflight.NextImmediate, Clients.GetByListener),
// which deadlocked under load; a QoS 1/2 message lost when writing its
// PUBACK or PUBREC failed (it is now forwarded before it is
// acknowledged); a send quota that leaked once messages were held back
// for a client's Receive Maximum, after which a QoS 1/2 subscriber
// stalled for good (they are now sent, in order, as its acknowledgements
// free the quota); no PUBACK or PUBREC 0x10 (no matching subscribers),
// so that a request nobody listens to waited for its timeout (it now
// fails at once: mqttkeep's ErrNoResponders); a resumed session's
// messages re-sent in any order (sorted by the low 16 bits of their
// creation second, unstably; now in the order sent, [MQTT-4.6.0-1]); and,
// for [WithDataDir], restored messages sent all at once beyond the
// client's Receive Maximum. Its Server.Close waits forever for a
// connection that never sent CONNECT; the kit closes every connection
// itself first, so Close, Stop and Restart never hang.
//
// For what mochi cannot show (another broker's quirks), test against the
// real broker your program will use.
package mqttkeeptest
