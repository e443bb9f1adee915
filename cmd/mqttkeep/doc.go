// Command mqttkeep is the command-line face of the mqttkeep library: a
// scripted demo of its keepalive and reconnect behaviour on an embedded
// broker; sub and pub, a mosquitto_sub and a mosquitto_pub that
// reconnect; ping and check for brokers; and an embedded broker for local
// experiments.
//
// Install it with
//
//	go install github.com/mqttkeep/mqttkeep/cmd/mqttkeep@latest
//
// or run it from a checkout with "go run ./cmd/mqttkeep COMMAND". Help is
// "mqttkeep --help", "mqttkeep help COMMAND" or "mqttkeep COMMAND --help";
// never -h, which is the broker's host name, as with mosquitto.
//
// # Examples
//
//	mqttkeep demo                                                # the library at work, about 20 s
//	mqttkeep sub -h broker.example -t 'sensors/#' -q 1 -v        # "topic payload" per line, reconnects forever
//	mqttkeep sub -L 'mqtts://broker.example/sensors/#' -F %j      # one JSON object per message, as mosquitto_sub's %j
//	tail -F app.log | mqttkeep pub -t logs/app -q 1 -l --timeout 0  # one message per line, across reconnects
//	mqttkeep pub -t sensors/hall/temp -m 19.5 -q 1 -r -D publish content-type text/plain
//	mqttkeep ping -c 5 -L mqtts://broker.example                  # ping(8) with PINGREQ: rtt, loss, min/avg/max/mdev
//	mqttkeep check -L mqtts://broker.example --json               # what the broker enforces and offers, TLS chain, keep alive
//	mqttkeep broker -l 127.0.0.1:1883                             # the embedded broker, for experiments
//
// # demo
//
// "mqttkeep demo" starts an embedded broker and a fault proxy and runs a
// scripted timeline in about 20 s (--duration): idle pings with their
// round trip (from the library's WithOnPing hook); a silent link death,
// with the detection time against the K/2 + ping timeout bound; the link
// restored; a broker restart; a clean shutdown. Then a summary of
// detection and recovery times and of the messages published, received,
// re-sent with DUP, duplicated and lost, and a verdict that states the
// conditions it holds under: the publisher waits for the subscriber's
// session hand-over, because mochi 2.7.9 loses messages published during
// a session takeover, and around the restart. A DUP-flagged first arrival
// counts as a re-send, not a duplicate; a duplicate is a payload seen
// twice. The exit status is 0 only when nothing acknowledged was lost.
// --json prints one JSON object per event; --svg FILE draws the run as
// swimlanes of both clients, the fault windows, the pings, the detection
// of the dead link against its bound and the sequence numbers received
// (cmd/mqttkeep/testdata/demo.svg is one, drawn by "go run ./cmd/mqttkeep
// demo --svg cmd/mqttkeep/testdata/demo.svg"). -k (--keepalive) sets both
// clients' keep alive (default 2 s), --interval the publish interval
// (default 100 ms).
//
// # sub and pub
//
// sub and pub take mosquitto_sub's and mosquitto_pub's flags (Mosquitto
// 2.0.11), with the same letters, meanings and, where they apply, exit
// statuses. Both reconnect with backoff and say why on stderr, one line
// per reconnect with its cause; sub restores its subscriptions by itself.
// pub still fails at once against a closed port or a refusing broker, as
// mosquitto_pub does, unless --timeout asks it to wait. The tests run
// both tools side by side on Mosquitto and compare output and exit status
// (cmd/mqttkeep/mosquitto_test.go).
//
// pub follows every message until it is delivered: a QoS 1 or 2 message
// until the broker acknowledged it, a QoS 0 one until the broker answered
// a PINGREQ sent behind it (Client.Flush), each within --timeout of its
// acceptance (default 30 s; 0: no limit), across reconnects. It publishes
// with PublishAsync, in order, pipelined, and ends with Drain. Given,
// --timeout also lets pub wait that long for its first connection.
//
// sub acknowledges a message once printed: messages that arrive after -C
// or -W ended the run stay with the broker, for a session kept with -c. A
// message matching several -t filters is printed once.
//
// # ping
//
// "mqttkeep ping" is ping(8) with PINGREQ: -c, -i, -W, -w and -q as
// ping(8)'s. It sends one PINGREQ (Client.Ping) per interval on a kept
// connection and prints the round trip of each PINGRESP, then the loss
// and min/avg/max/mdev. Each PINGREQ is one attempt bounded by -W: with
// no connection it waits for one, then for its PINGRESP, all within -W,
// and counts as lost otherwise. Attempts start every -i from the start,
// so against a broker that never answers (a closed port, or one that
// accepts TCP and says nothing) -c N ends within (N-1) × -i + -W; -w is a
// deadline from the start, connecting included; with -c and -w, as with
// ping(8), the run goes on until -c PINGRESPs came. Reconnects are
// reported and survived. The first line says whether the library's keep
// alive pings run too (-k 0 turns them off). ping's -i and -c are the
// interval and the count: the client ID is --id, a kept session
// --disable-clean-session.
//
// # check
//
// "mqttkeep check" connects once and prints what the broker announced in
// its CONNACK: Server Keep Alive, Maximum QoS, Retain Available, Maximum
// Packet Size, Receive Maximum, Topic Alias Maximum, wildcard /
// subscription identifier / shared subscription availability, the
// assigned client ID, the session expiry, Response Information (ask with
// -D connect request-response-information 1), Server Reference and
// authentication method; for TLS the version, cipher suite, ALPN and each
// certificate of the chain (subject, issuer, validity); the round trip
// over --pings PINGREQs (default 5); and what the keep alive means ("broker
// imposes K = 60 s: a dead link is reported within 60 s": K/2 without
// traffic, then a ping timeout of K/2; the broker drops a client silent
// for 1.5 K). --json prints one object; --timeout bounds the connection
// (default 10 s).
//
// # broker
//
// "mqttkeep broker" runs the embedded mochi-mqtt 2.7.9 broker (in memory,
// no authentication) on -l ADDR (default 127.0.0.1:1883) until Ctrl-C; its
// help lists mochi's known limits. Go programs get the same broker for
// their tests from package github.com/mqttkeep/mqttkeep/mqttkeeptest.
//
// # Connection flags (sub, pub, ping, check) compared with mosquitto's
//
// Same as mosquitto's unless said:
//
//   - -h, -p, -L URL (--url): -L mqtt(s)://user:pass@host:port/topic;
//     the path is the topic (sub's filter, pub's topic), taken as written,
//     as mosquitto's. Also tcp://, ssl:// and tls://, and, ours, ws:// and
//     wss:// (MQTT over WebSocket, whose path is the HTTP path, not a
//     topic). The user name and password are percent-decoded: write "/"
//     as %2F, "?" as %3F, "#" as %23 and a space as %20 (an unencoded
//     "/" starts the topic, as with mosquitto; "?" or "#" before the path
//     is refused).
//   - -u, -P: never printed (see Passwords).
//   - -i, -I: -I is the prefix followed by the process id. Without -i the
//     client ID is "mqttkeep" and 12 random hex digits, kept across
//     reconnects (mosquitto sends none and lets the broker assign one).
//   - -k: seconds or a duration (1m); default 30 s (mosquitto: 60); 0
//     turns automatic pings off (mosquitto takes 5 to 65535). The client
//     pings after K/2 without traffic and reports a dead link within K.
//   - -c, -x: as mosquitto's: -c keeps the session, which then never
//     expires unless -x says otherwise, and that needs -i. Without them the
//     session expiry is 300 s, so that a lost connection finds its session
//     again, and a normal exit ends it (mosquitto: 0).
//   - -q, -r, -d, --quiet: -d logs the library's debug output (pings,
//     connects) on stderr.
//   - -V: mqttv5 (or 5) or mqttv311 (or 311), as mosquitto's; without it
//     the library negotiates: MQTT 5, and 3.1.1 at once with a broker
//     that refuses 5 (mosquitto defaults to 3.1.1). MQTT 3.1 (mqttv31)
//     is not supported. check shows what was negotiated.
//   - -D COMMAND PROPERTY VALUE: connect (all of mosquitto's;
//     authentication-method and authentication-data in one step: a broker
//     that asks for more fails the attempt), publish (all; topic-alias
//     turns the library's own alias numbering on), will (all), disconnect
//     (all); -D subscribe user-property goes on every SUBSCRIBE (sub).
//     Refused with the reason: -D subscribe subscription-identifier (the
//     library gives every subscription an identifier of its own) and -D
//     unsubscribe user-property (the library's Unsubscribe takes no
//     properties); puback, pubrec, pubrel, pubcomp and auth (the library
//     sends its own).
//   - --will-topic, --will-payload, --will-qos, --will-retain; ours:
//     --will-delay D, the Will Delay Interval.
//   - --cafile, --capath, --cert, --key, --insecure, --tls-version,
//     --tls-alpn, --tls-use-os-certs: TLS is on as with mosquitto (a CA
//     given, an mqtts:// or wss:// URL, or port 8883); --insecure skips the
//     host name check only (the chain is still checked); --tls-version is
//     exact (tlsv1.3, tlsv1.2 or tlsv1.1; default: 1.2 or newer).
//   - -A, --unix, --nodelay: --nodelay is accepted, Go disables Nagle's
//     algorithm already.
//   - Refused with the reason: --ciphers (Go's TLS picks among its own
//     secure suites; TLS 1.3's are fixed), --psk and --psk-identity (Go's
//     crypto/tls has no PSK cipher suites), --tls-engine, --keyform and
//     --tls-engine-kpass-sha1 (OpenSSL engines), --proxy (SOCKS5 is not
//     implemented), -S (SRV lookups are not implemented).
//   - -o and configuration files are not read.
//
// # sub's and pub's own flags compared with mosquitto's
//
//   - sub -t, -T, -U, -C, -E, -R, --retained-only, --remove-retained,
//     --retain-as-published, --random-filter, -W: as mosquitto_sub's. -W
//     counts connecting too (mosquitto_sub fails at once without a broker;
//     sub waits, retrying).
//   - sub -v, -N, -F, --pretty: the payload alone by default, and every -F
//     sequence of 2.0.11. %S and %j show the library's own subscription
//     identifier; %A is always empty (the library resolves topic aliases);
//     a %j payload that is not UTF-8 is an array of byte values (2.0.11
//     cuts it at the first NUL). With several -t, messages of different
//     subscriptions may print out of arrival order: the library delivers
//     each subscription's messages on a lane of its own, in order.
//   - pub -t, -m, -f, -s, -l, -n, --repeat, --repeat-delay, -M: as
//     mosquitto_pub's; -l as mosquitto's: an empty line is an empty
//     message, and a "\r" stays in it.
//   - pub --timeout D: ours (see sub and pub).
//
// # Exit statuses
//
// Every command exits 2 for a bad command line (an unknown command or
// flag, a bad value, a missing flag), reported on one line of stderr
// (mosquitto's tools exit 1).
//
//   - demo: 0 when no message acknowledged by the broker was lost, else 1.
//   - sub: 0 after Ctrl-C, -C, -E or --retained-only; 27 after -W (as
//     mosquitto_sub); the CONNACK reason code when the broker refuses the
//     connection for good (134 bad user name or password, 135 not
//     authorized, ...); 1 when a subscription is refused or a TLS
//     certificate does not verify. A broker that cannot be reached is
//     retried for ever (-W bounds the wait).
//   - pub: 0 when every message was delivered (also after Ctrl-C, which
//     waits up to 2 s for the acknowledgements of the messages already
//     sent); the CONNACK reason code of a refusal, as mosquitto_pub; 1
//     when the broker cannot be reached, a TLS certificate does not
//     verify, or a message was not delivered: not acknowledged within
//     --timeout, or refused with a PUBACK/PUBREC reason code
//     (mosquitto_pub warns and exits 0).
//   - ping, as ping(8) and not as mosquitto: 0 when at least one PINGRESP
//     came (with -c and -w: -c of them before the deadline); 1 when none
//     came (no connection, a silent broker, Ctrl-C before an answer) or,
//     with -c and -w, fewer than -c; 2 when the broker refused the
//     connection for good (the reason code is printed, not used as the
//     status) or a certificate does not verify.
//   - check: 0 when connected; 1 when not (refused, unreachable, a
//     certificate that does not verify).
//   - broker: 0 after Ctrl-C; 1 when the address cannot be used.
//
// # Passwords
//
// No output of the command repeats a password given on its command line:
// not an error, a reconnect line, ping's or check's report, the -d log.
// That covers -P and --pw (also glued, -Psecret), -D connect
// authentication-data, and the password of any argument that holds user
// information (-L mqtt://user:pass@host, or such a URL given by mistake
// where it does not belong), however a message would show it: whole,
// quoted, percent-decoded or cut at a "/". A stray URL is shown with
// "[REDACTED]" in place of its user information. Messages sub prints are
// written as they came.
package main
