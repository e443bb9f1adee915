package main

import (
	"fmt"
	"strings"
)

// topHelp is "mqttkeep --help".
func topHelp() string {
	var b strings.Builder
	b.WriteString(`mqttkeep: an MQTT v5 client that keeps its connection alive

Usage:
  mqttkeep COMMAND [FLAGS]
  mqttkeep help COMMAND        (or: mqttkeep COMMAND --help)

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString(`
sub and pub take mosquitto_sub's and mosquitto_pub's flags, with the same
letters and meanings, and reconnect by themselves. Help is --help, never
-h: as with mosquitto, -h is the broker's host name.

Exit status: 0 success; 1 failure (a message not delivered, messages lost
in the demo, no connection); 2 bad command line; sub and pub also exit, as
mosquitto's do, with the CONNACK reason code when the broker refuses them
(134 bad user name or password, 135 not authorized, ...) and sub with 27
when -W runs out; ping exits as ping(8): 0 answered, 1 no answer, 2 error.

Examples:
  mqttkeep demo                                  # about 20 s, on an embedded broker
  mqttkeep broker &                              # a broker on 127.0.0.1:1883
  mqttkeep sub -t 'sensors/#' -q 1 -v            # prints "topic payload" per message
  mqttkeep pub -t sensors/hall/temp -m 19.5 -q 1
  mqttkeep ping -c 5
  mqttkeep check -L mqtts://broker.example
`)
	return b.String()
}

// shortUsage is printed on stderr when no command is given.
func shortUsage() string {
	names := make([]string, 0, 6)
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return fmt.Sprintf("usage: mqttkeep COMMAND [FLAGS]; commands: %s (see 'mqttkeep --help')\n", strings.Join(names, ", "))
}

// connHelp describes the connection flags of sub, pub, ping and check.
const connHelp = `Connection (as mosquitto's):
  -L, --url URL          broker URL: mqtt://[user[:password]@]host[:port][/topic]; also
                         mqtts:// (TLS, port 8883), tcp://, ssl://, tls://, ws:// and wss://
                         (WebSocket: the path is the HTTP path, not a topic). As with
                         mosquitto, the path of an mqtt(s):// URL is the topic (-t).
                         In a user name or password write "/" as %2F, "?" as %3F,
                         "#" as %23 and a space as %20
  -h, --host HOST        broker host, when -L is not given (default localhost)
  -p, --port PORT        broker port (default 1883, 8883 with TLS)
      --unix PATH        connect through a unix socket instead of -h/-p/-L
  -A ADDRESS             local address to connect from
  -i, --id ID            client ID (default: mqttkeep + 12 random hex digits)
  -I, --id-prefix PREFIX client ID: PREFIX followed by the process id
  -u, --username USER    user name
  -P, --pw PASSWORD      password (never printed, neither in errors nor in logs)
  -k, --keepalive K      keep alive: seconds (60) or a duration (1m); 0 turns pings off
                         (default 30s). The client pings after K/2 without traffic and
                         reports a dead link within K.
  -c, --disable-clean-session
                         resume the broker's session for this client ID and keep it
                         when the client ends (it never expires unless -x); needs -i
  -x SECONDS             session expiry interval: 0 to 4294967295, or -1 / ∞ for never
                         (default 300: a lost connection finds its session again,
                         and a normal exit ends it; mosquitto's default is 0)
  -V, --protocol-version mqttv5 (5) or mqttv311 (311); default: negotiate (5, else 3.1.1)
  -D COMMAND PROPERTY VALUE, -D COMMAND user-property NAME VALUE
                         an MQTT v5 property: connect (authentication-method,
                         authentication-data, maximum-packet-size, receive-maximum,
                         request-problem-information, request-response-information,
                         session-expiry-interval, topic-alias-maximum, user-property),
                         will (content-type, correlation-data, message-expiry-interval,
                         payload-format-indicator, response-topic, user-property,
                         will-delay-interval), disconnect (session-expiry-interval,
                         user-property); sub also subscribe (user-property, on
                         every SUBSCRIBE); pub also publish (content-type,
                         correlation-data, message-expiry-interval,
                         payload-format-indicator, response-topic, user-property,
                         topic-alias: the library numbers the aliases itself)
      --will-topic TOPIC      will message, published by the broker if the connection
      --will-payload PAYLOAD  dies without DISCONNECT (default payload: empty)
      --will-qos QOS          will QoS (default 0)
      --will-retain           retain the will
      --will-delay D          Will Delay Interval: a reconnect within D cancels the will
  -d, --debug            log the library's debug output (pings, connects) on stderr
      --quiet            print nothing on stderr but bad command lines
      --nodelay          accepted: Go turns Nagle's algorithm off already
      --help             this help (-h is the host)

TLS (on with an mqtts:// or wss:// URL, --cafile, --capath, --tls-use-os-certs or
port 8883):
      --cafile FILE      trusted CA certificates (PEM); without it, the system's
      --capath DIR       a directory of PEM CA certificates
      --tls-use-os-certs trust the system's CAs too
      --cert FILE, --key FILE
                         client certificate and private key (PEM)
      --tls-version V    exactly this version: tlsv1.3, tlsv1.2 or tlsv1.1 (default:
                         TLS 1.2 or newer)
      --tls-alpn PROTO   ALPN protocol to ask for
      --insecure         do not check that the certificate names the host (the chain
                         is still checked)
  Not supported (refused with the reason): --ciphers, --psk, --psk-identity,
  --tls-engine, --keyform, --tls-engine-kpass-sha1, --proxy, -S (SRV lookups).
`

// brokerHelp is "mqttkeep help broker".
const brokerHelp = `Usage: mqttkeep broker [-l ADDR] [--data DIR]

Runs an embedded MQTT v5 broker (mochi-mqtt v2.7.9 with the test kit's
fixes, every client allowed) until Ctrl-C, logging clients connecting and
disconnecting on stderr; Ctrl-C sends every client a DISCONNECT 0x8B
(server shutting down). Without --data it keeps everything in memory: a
restart loses every session and message. With --data DIR it keeps in DIR
the sessions that outlive their connection (Session Expiry Interval above
0: their subscriptions and the QoS 1/2 messages in flight to them or
queued for them) and retained messages, and writes and syncs each before
acknowledging it (PUBACK, PUBREC, SUBACK): what it acknowledged survives
a restart, a kill -9 and a crash of the machine. One broker at a time per
DIR. For local experiments only: there is no authentication. Go programs
get the same broker for their tests from package
github.com/mqttkeep/mqttkeep/mqttkeeptest (WithDataDir for --data).

Known limits (the broker's, not the client's; the list is mqttkeeptest's):
  1. it strips user properties from the messages it forwards to a
     subscriber that connected with Request Problem Information 0;
  2. a session takeover (a new connection with the same client ID) loses
     the messages in flight to that client ID during the hand-over;
  3. it announces no Maximum Packet Size;
  4. one packet identifier map serves both directions: a SUBSCRIBE or
     UNSUBSCRIBE reusing the identifier of a QoS 1/2 message the broker
     sent and the client has not acknowledged is refused with 0x91, and a
     PUBLISH reusing it cancels that message;
  5. it sends the messages it had queued for a client before that
     client's UNSUBSCRIBE after its UNSUBACK;
  6. smaller deviations: retained messages sent on SUBSCRIBE carry no
     Subscription Identifier; a re-sent QoS 2 PUBLISH whose PUBREC it
     holds is answered with PUBREC 0x91 instead of 0x00, and every PUBREC
     it holds is re-sent when a session resumes; a will's properties are
     dropped but its delay and user properties; no Topic Alias Maximum is
     announced, and a resumed session re-sends queued messages with the
     topic aliases of an earlier connection; a message held back for a
     client's Receive Maximum that expires while it waits is still sent,
     with a Message Expiry Interval of 1 s;
  7. it keeps at most 8,192 QoS 1/2 messages per session (more are
     dropped) and drops a message queued, in flight or retained for
     longer than a day;
  8. with --data, after a restart: a session's expiry interval counts
     from the restart, a retained message's own expiry is forgotten, and
     the wills of clients that were connected are not published.

Flags:
  -l, --listen ADDR      address to listen on (default 127.0.0.1:1883; :1883 for
                         every interface, 127.0.0.1:0 for a free port)
      --data DIR         keep sessions and retained messages in DIR (created if
                         missing), across restarts and crashes (default: memory)
      --help             this help

Exit status: 0 after Ctrl-C, 1 when the address or DIR cannot be used, 2
for a bad command line.

Examples:
  mqttkeep broker
  mqttkeep broker -l 127.0.0.1:11883 --data /var/tmp/mqttkeep-broker
  mqttkeep broker & mqttkeep sub -t '#' -v & mqttkeep pub -t hello -m world
`
