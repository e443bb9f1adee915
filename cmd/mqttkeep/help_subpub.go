package main

// subHelp is "mqttkeep help sub".
const subHelp = `Usage: mqttkeep sub {-t FILTER... | -L URL/FILTER | -U FILTER...} [-q QOS] [-v | -F FORMAT] [FLAGS]

mosquitto_sub, reconnecting: subscribes to each topic filter and prints
every message on stdout until Ctrl-C (or -C messages, -W, -E,
--retained-only), reconnecting for ever and restoring the subscriptions
after a reconnect. Connection changes go to stderr, each with its cause.
A message is acknowledged once printed: those that arrive after the end
stay with the broker (for a session kept with -c). A message matching
several -t filters is printed once. Unlike mosquitto_sub, with several -t
the messages of different subscriptions may print in another order than
they arrived: the library hands each subscription's messages to it on a
delivery lane of its own (each lane keeps its order).

Subscription:
  -t, --topic FILTER     topic filter, + and # allowed; repeat for several
  -q, --qos QOS          maximum QoS of the subscriptions: 0, 1 or 2 (default 0)
  -U, --unsubscribe FILTER
                         unsubscribe from FILTER once connected (a subscription of a
                         kept session, -c); repeat for several
  -R                     do not print retained messages (and ask the broker not to
                         send them: Retain Handling 2)
      --retained-only    print only retained messages; exit 0 at the first other one
      --remove-retained  clear every retained message received (an empty retained
                         message, QoS 1, to its topic)
      --retain-as-published
                         keep the RETAIN flag as the publisher set it
  -T, --filter-out FILTER
                         do not print messages whose topic matches FILTER; repeat
  -C, --count N          exit 0 after N messages
  -E                     exit 0 once every subscription was acknowledged
  -W SECONDS             exit with status 27 after this long (a duration like 500ms
                         too), counted from the start, connecting included

Output (as mosquitto_sub's):
  (default)              the payload alone; nothing for an empty one
  -v, --verbose          "topic payload"; "topic (null)" for an empty payload
  -N                     no newline after each message
  -F FORMAT              each message by FORMAT (overrides -v):
                         %t topic, %p payload, %x / %X payload in hex, %l its length,
                         %q QoS, %m packet identifier (0 for QoS 0), %r retain flag
                         (0/1), %I ISO-8601 time, %U Unix time with nanoseconds,
                         %j JSON object (payload escaped; not UTF-8:
                         an array of byte values), %J JSON with the payload as JSON,
                         %C content type, %D correlation data, %E message expiry (s),
                         %F payload format indicator, %R response topic, %P user
                         properties (key:value ...), %S subscription identifier (the
                         library's own), %A topic alias (never: the library resolves
                         them), %% a %. Flags as printf's: %-10t, %010l, %.5t.
                         @Y @m @d @H @M @S ... strftime fields, @N nanoseconds, @@ an @.
                         Escapes \n \t \r \a \e \v \0 \\.
      --pretty           indent %j and %J
      --random-filter PERCENT
                         print only about PERCENT of the messages (0.1 to 100)

` + connHelp + `
Exit status: 0 after Ctrl-C, -C, -E or --retained-only; 27 after -W; the
CONNACK reason code when the broker refuses the connection for good (134
bad user name or password, 135 not authorized, ...); 1 when a
subscription is refused or a TLS certificate does not verify; 2 for a bad
command line. Unlike mosquitto_sub, a broker that cannot be reached is
retried for ever (-W bounds the wait).

Examples:
  mqttkeep sub -t 'sensors/#'
  mqttkeep sub -h broker.lan -t 'sensors/+/temp' -t alerts -q 1 -v
  mqttkeep sub -L 'mqtts://alice:secret@broker.lan/sensors/#' -F '%I %t %p'
  mqttkeep sub -t 'sensors/#' -F %j | jq .payload
  mqttkeep sub -t demo/counter -q 1 -c -i my-sub -C 5
  mqttkeep sub -t '#' --retained-only --remove-retained     # clear every retained message
`

// pubHelp is "mqttkeep help pub".
const pubHelp = `Usage: mqttkeep pub {-t TOPIC | -L URL/TOPIC} {-m MSG | -f FILE | -s | -l | -n} [-q QOS] [-r] [FLAGS]

mosquitto_pub, reconnecting: publishes one message (-m, -f, -s, -n;
--repeat times) or one message per line of stdin (-l), and makes sure each
arrives: a QoS 1/2 message counts once the broker acknowledged it, QoS 0
ones once the broker answered a PINGREQ sent behind them. A message that
meets a lost connection is sent again after the reconnect, until it is
acknowledged or --timeout passes. Reconnects are reported on stderr, each
with its cause.

Message:
  -t, --topic TOPIC      topic to publish to, no wildcards
  -m, --message MSG      the message ("" sends an empty one)
  -f, --file FILE        the contents of FILE as the message
  -s, --stdin-file       the whole of stdin as one message
  -l, --stdin-line       each line of stdin as one message, without its "\n" (an empty
                         line is an empty message), in order
  -n, --null-message     an empty message
  -q, --qos QOS          0, 1 or 2 (default 0)
  -r, --retain           ask the broker to retain the message
      --repeat N         publish the message N times (not with -l)
      --repeat-delay S   wait S seconds (0.5, or a duration) after each completed
                         message before the next repeat
  -M N                   at most N QoS 1/2 messages in flight (default: the broker's
                         Receive Maximum)
      --timeout D        how long one message may take to be delivered, from when it
                         is accepted (default 30s; 0: no limit). Given, it also lets pub
                         wait that long for the first connection; without it, pub
                         gives up at the first failed attempt, as mosquitto_pub does

` + connHelp + `
Exit status: 0 when every message was delivered (also after Ctrl-C while
waiting for the next line of stdin: Ctrl-C waits up to 2 s for the
acknowledgements of the messages already sent); 1 when one was not
(--timeout, refused with a PUBACK/PUBREC reason code, not acknowledged
within those 2 s after Ctrl-C), when the broker cannot be reached, or when a TLS
certificate does not verify; the CONNACK reason code when the broker
refuses the connection (134 bad user name or password, 135 not
authorized, ...); 2 for a bad command line.

Examples:
  mqttkeep pub -t sensors/hall/temp -m 19.5
  mqttkeep pub -h broker.lan -t alerts -m 'door open' -q 1 -r
  seq 1 100 | mqttkeep pub -L mqtt://127.0.0.1:1883/demo/counter -q 1 -l
  tail -F app.log | mqttkeep pub -t logs/app -q 1 -l --timeout 0
  mqttkeep pub -t cmd -m on -D publish user-property origin cli -D publish response-topic cmd/reply
`
