package main

// pingHelp is "mqttkeep help ping".
const pingHelp = `Usage: mqttkeep ping [-c COUNT] [-i INTERVAL] [-W TIMEOUT] [-w DEADLINE] [-q] [CONNECTION FLAGS]

ping(8) for an MQTT broker: sends one PINGREQ every INTERVAL on a kept
connection and prints the round trip of each PINGRESP, then, after COUNT
PINGREQs, DEADLINE or Ctrl-C, the loss and min/avg/max/mdev of the round
trips. Each PINGREQ is one attempt bounded by TIMEOUT: when there is no
connection it waits for one, then for its PINGRESP, all within TIMEOUT,
and counts as lost otherwise; against a broker that never answers (a
closed port, or one that accepts TCP and says nothing) -c COUNT ends
within (COUNT-1) x INTERVAL + TIMEOUT. A lost connection is reported
(with its cause) and restored. The first line, printed once the first
attempt ended, says whether the library's own keep alive pings run too
(-k 0 turns them off).

Flags:
  -c COUNT               stop after COUNT attempts (default: until Ctrl-C); with -w, as
                         ping(8), after COUNT PINGRESPs
  -i INTERVAL            seconds between PINGREQs (0.2, or a duration; default 1)
  -W TIMEOUT             how long each PINGREQ waits for a connection and its PINGRESP
                         (default 10)
  -w DEADLINE            stop DEADLINE after the start, connecting included
  -q                     only the first line and the summary
      --id ID            client ID (ping's -i is the interval)
      --disable-clean-session
                         resume the session for --id (ping's -c is the count)

` + connHelp + `
Exit status (ping(8)'s, not mosquitto's): 0 when at least one PINGRESP came
(with -c and -w: COUNT of them before DEADLINE); 1 when none came (no
connection, a silent broker, Ctrl-C before an answer) or, with -c and -w,
fewer than COUNT; 2 for a bad command line or a broker that refused the
connection for good (a CONNACK reason code such as 0x86 or 0x87, or a
certificate that does not verify: the reason is printed, not used as the
status).

Examples:
  mqttkeep ping
  mqttkeep ping -c 10 -i 0.2 -L mqtts://broker.example
  mqttkeep ping -c 3 -W 2 -h broker.lan   # gives up after about 4 s if nothing answers
  mqttkeep ping -k 0 -W 2                 # no keep alive pings beside ours
`

// checkHelp is "mqttkeep help check".
const checkHelp = `Usage: mqttkeep check [--json] [--pings N] [--timeout D] [CONNECTION FLAGS]

Connects once and prints what the broker enforces and offers, read from
its CONNACK: Server Keep Alive, Maximum QoS, Retain Available, Maximum
Packet Size, Receive Maximum, Topic Alias Maximum, wildcard, subscription
identifier and shared subscription availability, the assigned client ID,
the session expiry, Response Information (ask with -D connect
request-response-information 1), Server Reference and authentication
method; for TLS the version, cipher suite, ALPN and each certificate of
the chain (subject, issuer, validity); the round trip over N PINGREQs; and
what the keep alive means: how soon a dead link is reported (K/2 without
traffic, then a ping timeout of K/2) and when the broker drops a silent
client (1.5 K). Then it disconnects.

Flags:
      --json             one JSON object instead of the table
      --pings N          PINGREQs for the round trip (default 5; 0: none)
      --timeout D        connect timeout (default 10s)

` + connHelp + `
Exit status: 0 when connected, 1 when not (refused, unreachable, a
certificate that does not verify), 2 for a bad command line.

Examples:
  mqttkeep check
  mqttkeep check -L mqtts://broker.example --cafile ca.pem --json | jq .keep_alive_s
  mqttkeep check -h broker.lan -k 600      # does the broker impose a shorter keep alive?
`

// demoHelp is "mqttkeep help demo".
const demoHelp = `Usage: mqttkeep demo [--duration D] [--keepalive K] [--interval I] [--json] [--svg FILE]

A scripted tour of the library on an embedded broker, in one process,
about --duration long (each phase lasts at least what it needs):

  a. idle link: client "sub", connected through a fault proxy, sends
     PINGREQ every K/2; each PINGRESP is shown with its round trip (from
     the library's ping hook)
  then client "pub", connected directly, publishes a sequence number to
     demo/counter every --interval with QoS 1; sub subscribes with QoS 1
  b. silent link death: the proxy drops every byte (no FIN, no RST); sub
     must report a ping timeout within K/2 + ping timeout = K
  c. link restored: sub reconnects (its session is still on the broker) and
     the messages queued meanwhile arrive; pub holds back new messages
     until sub's session hand-over is done, because mochi 2.7.9 loses
     messages published during a session takeover
  d. broker restart: the broker stops, losing every session, and starts
     again on the same port about 1 s later; both clients reconnect and the
     library restores sub's subscription by itself; pub holds back until
     then, as the restarted broker drops what nobody subscribed to
  e. clean shutdown; then a summary: disconnects, detection and recovery
     times, messages published (acknowledged) / received / re-sent with
     DUP / duplicated / lost, and the verdict with the conditions it holds
     under

A DUP-flagged message is a re-send by the broker; it is a duplicate only
when its payload had been received before.

Flags:
  --duration D       planned length of the run (default 20s)
  -k, --keepalive K  keep alive of both clients, whole seconds (default 2s)
  --interval I       publish interval (default 100ms)
  --json             one JSON object per line on stdout: {"t": seconds,
                     "event": name, ...fields}, ending with an "event":"summary" object
  --svg FILE         also draw the run as an SVG picture: a swimlane per client
                     (connected, reconnecting, down), the fault windows, the pings,
                     the detection of the dead link against the K/2 + ping timeout
                     bound, and the sequence numbers received over time
  --help             this help

Exit status: 0 when no message acknowledged by the broker was lost, 1
otherwise, 2 for a bad flag.

Examples:
  mqttkeep demo
  mqttkeep demo --duration 8s --svg run.svg
  mqttkeep demo --keepalive 4s --duration 30s
  mqttkeep demo --json | jq -c 'select(.event == "disconnected")'
`
