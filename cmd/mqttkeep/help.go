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
Help is --help, never -h: as with mosquitto_sub and mosquitto_pub, -h is
the broker's host name.

Exit status: 0 success, 1 failure (a message not delivered, messages lost
in the demo, the broker refused the connection), 2 bad command line.

Examples:
  mqttkeep demo                                  # about 20 s, on an embedded broker
  mqttkeep broker &                              # a broker on 127.0.0.1:1883
  mqttkeep sub -t 'sensors/#' -q 1               # prints "topic payload" per message
  mqttkeep pub -t sensors/hall/temp -m 19.5 -q 1
`)
	return b.String()
}

// shortUsage is printed on stderr when no command is given.
func shortUsage() string {
	names := make([]string, 0, 4)
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return fmt.Sprintf("usage: mqttkeep COMMAND [FLAGS]; commands: %s (see 'mqttkeep --help')\n", strings.Join(names, ", "))
}

// connHelp describes the connection flags of sub and pub.
const connHelp = `Connection:
  -s, --url URL          broker URL: mqtt://host[:port] or tcp://host[:port] (port 1883
                         by default), or any other scheme the library dials;
                         user:password@ in the URL is taken as -u/-P
  -h, --host HOST        broker host, when -s is not given (default localhost)
  -p, --port PORT        broker port, when -s is not given (default 1883)
  -i, --id ID            client ID (default: mqttkeep + 12 random hex digits)
  -u, --username USER    user name
  -P, --pw PASSWORD      password (never printed, neither in errors nor in logs)
  -k, --keepalive D      keep alive: seconds (60) or a duration (1m); 0 turns pings off
                         (default 30s). The client pings after K/2 without traffic and
                         reports a dead link within K.
  -d, --debug            log the library's debug output (pings, connects) on stderr
      --help             this help (-h is the host)
`

// demoHelp is "mqttkeep help demo".
const demoHelp = `Usage: mqttkeep demo [--duration D] [--keepalive K] [--interval I] [--json]

A scripted tour of the library on an embedded broker, in one process,
about --duration long (each phase lasts at least what it needs):

  a. idle link: client "sub", connected through a fault proxy, sends
     PINGREQ every K/2; each PINGREQ/PINGRESP is shown with its round trip
  then client "pub", connected directly, publishes a sequence number to
     demo/counter every --interval with QoS 1; sub subscribes with QoS 1
  b. silent link death: the proxy drops every byte (no FIN, no RST); sub
     must report a ping timeout within K/2 + ping timeout = K
  c. link restored: sub reconnects (its session is still on the broker) and
     the messages queued meanwhile arrive
  d. broker restart: the broker stops, losing every session, and starts
     again on the same port about 1 s later; both clients reconnect and the
     library restores sub's subscription by itself
  e. clean shutdown; then a summary: disconnects, detection and recovery
     times, messages published (acknowledged) / received / duplicated /
     lost

Flags:
  --duration D       planned length of the run (default 20s)
  -k, --keepalive K  keep alive of both clients, whole seconds (default 2s)
  --interval I       publish interval (default 100ms)
  --json             one JSON object per line on stdout: {"t": seconds,
                     "event": name, ...fields}, ending with an "event":"summary" object
  --help             this help

Exit status: 0 when no message acknowledged by the broker was lost, 1
otherwise, 2 for a bad flag.

Examples:
  mqttkeep demo
  mqttkeep demo --duration 8s
  mqttkeep demo --keepalive 4s --duration 30s
  mqttkeep demo --json | jq -c 'select(.event == "disconnected")'
`

// subHelp is "mqttkeep help sub".
const subHelp = `Usage: mqttkeep sub -t FILTER [-t FILTER...] [-q QOS] [-s URL | -h HOST -p PORT] [FLAGS]

Subscribes to each topic filter and prints every message on stdout until
Ctrl-C (or -C messages), reconnecting for ever and restoring the
subscriptions after a reconnect. Connection changes are reported on stderr.
Ctrl-C or SIGTERM disconnects cleanly and exits 0.

Subscription and output:
  -t, --topic FILTER     topic filter, + and # allowed; repeat for several (required)
  -q, --qos QOS          maximum QoS: 0, 1 or 2 (default 0)
  -C, --count N          exit after N messages (default 0: never)
  -v                     accepted for mosquitto_sub habits; the topic is always printed
      --format FORMAT    text: "topic payload" per line (default);
                         json: one object per line: {"topic", "payload" (text, or
                         base64 with "payload_base64": true when not UTF-8), "qos",
                         "retain", "dup", "properties": {content_type, response_topic,
                         correlation_data (base64), message_expiry (s),
                         payload_format_utf8, user_properties: [{key, value}]}}

` + connHelp + `
Exit status: 0 after Ctrl-C or -C messages, 1 when the broker refuses the
connection or a subscription, 2 for a bad command line.

Examples:
  mqttkeep sub -t 'sensors/#'
  mqttkeep sub -h broker.lan -p 1883 -t 'sensors/+/temp' -t alerts -q 1
  mqttkeep sub -s mqtt://broker.lan:1883 -t 'sensors/#' --format json | jq .payload
  mqttkeep sub -t demo/counter -q 1 -i my-sub -k 10 -C 5
  mqttkeep sub -s mqtt://broker.lan -u alice -P "$MQTT_PASSWORD" -t 'home/#'
`

// pubHelp is "mqttkeep help pub".
const pubHelp = `Usage: mqttkeep pub -t TOPIC (-m MESSAGE | --stdin) [-q QOS] [-r] [--timeout D] [-s URL | -h HOST -p PORT] [FLAGS]

Publishes one message (-m), or one message per line of stdin (--stdin),
and makes sure each arrives: QoS 1 and 2 messages count once the broker
acknowledged them, QoS 0 once written. A message that meets a lost
connection is published again after the reconnect, until it is
acknowledged or --timeout passes. Reconnects are reported on stderr.

Message:
  -t, --topic TOPIC      topic to publish to, no wildcards (required)
  -m, --message MSG      the message ("" sends an empty one)
  -l, --stdin            read stdin: each line is one message (without its "\n" or
                         "\r\n"; blank lines are skipped), sent in order, each one
                         acknowledged before the next is read
  -q, --qos QOS          0, 1 or 2 (default 0)
  -r, --retain           ask the broker to retain the message
      --timeout D        how long one message may take to be delivered, connecting
                         included (default 30s; 0: no limit)

` + connHelp + `
Exit status: 0 when every message was delivered (also after Ctrl-C while
waiting for the next line of stdin), 1 when one was not (--timeout, Ctrl-C
while delivering, refused by the broker), 2 for a bad command line.

Examples:
  mqttkeep pub -t sensors/hall/temp -m 19.5
  mqttkeep pub -h broker.lan -t alerts -m 'door open' -q 1 -r
  seq 1 100 | mqttkeep pub -s mqtt://127.0.0.1:1883 -t demo/counter -q 1 --stdin
  tail -F app.log | mqttkeep pub -t logs/app -q 1 --stdin --timeout 0
`

// brokerHelp is "mqttkeep help broker".
const brokerHelp = `Usage: mqttkeep broker [-l ADDR]

Runs an embedded MQTT v5 broker (mochi-mqtt v2.7.9, in memory, no
persistence, every client allowed) until Ctrl-C, logging clients connecting
and disconnecting on stderr; Ctrl-C sends every client a DISCONNECT 0x8B
(server shutting down). For local experiments only: there is no
authentication. Go programs get the same broker for their tests from
package github.com/mqttkeep/mqttkeep/mqttkeeptest.

Known limits of mochi-mqtt v2.7.9 (the broker's, not the client's):
  - it strips user properties from the messages it forwards to a subscriber
    that connected with Request Problem Information 0;
  - its send quota leaks once it held messages back for a client's Receive
    Maximum: a slow QoS 1/2 subscriber stalls after about two windows;
  - a session takeover loses the messages published to that client ID
    during the hand-over;
  - it announces no Maximum Packet Size;
  - one packet identifier map serves both directions: a SUBSCRIBE or
    UNSUBSCRIBE reusing the identifier of a QoS 1/2 message the broker sent
    and the client has not acknowledged is refused with 0x91, and a PUBLISH
    reusing it cancels that message;
  - it can deadlock, rarely: Inflight.NextImmediate read-locks twice, so
    a QoS 1/2 message queued for a client while a packet from that client
    is processed can hang both connections for good;
  - its own shutdown waits forever for a connection that never sent
    CONNECT; this command closes such connections itself.

Flags:
  -l, --listen ADDR      address to listen on (default 127.0.0.1:1883; :1883 for
                         every interface, 127.0.0.1:0 for a free port)
      --help             this help

Exit status: 0 after Ctrl-C, 1 when the address cannot be used, 2 for a
bad command line.

Examples:
  mqttkeep broker
  mqttkeep broker -l 127.0.0.1:11883
  mqttkeep broker & mqttkeep sub -t '#' & mqttkeep pub -t hello -m world
`
