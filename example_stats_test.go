package mqttkeep_test

import (
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// writePrometheus writes a client's Stats in the Prometheus text format,
// for a /metrics handler, without a Prometheus dependency. A program
// writes every field it watches the same way.
func writePrometheus(w io.Writer, client string, s mqttkeep.Stats) {
	metric := func(name, kind, help string, v float64) {
		fmt.Fprintf(w, "# HELP mqttkeep_%s %s\n# TYPE mqttkeep_%s %s\nmqttkeep_%s{client=%q} %g\n",
			name, help, name, kind, name, client, v)
	}
	connected := 0.0
	if s.State == mqttkeep.StateConnected {
		connected = 1
	}
	metric("connected", "gauge", "1 while a connection is up.", connected)
	metric("connects_total", "counter", "Successful CONNACKs.", float64(s.Connects))
	metric("disconnects_total", "counter", "Connections lost or closed after a CONNACK.", float64(s.Disconnects))
	metric("ping_rtt_seconds", "gauge", "Round trip of the latest PINGREQ.", s.PingRTTLast.Seconds())
	metric("messages_received_total", "counter", "Messages handed to a handler.", float64(s.InHandlerCalls))
	metric("messages_dropped_total", "counter", "QoS 0 messages dropped: handlers behind.", float64(s.InDroppedQoS0))
	metric("queued_messages", "gauge", "Accepted messages not yet written.", float64(s.OutQueued))
	if !s.LastReceived.IsZero() {
		metric("last_received_timestamp_seconds", "gauge", "When bytes last arrived from the broker.",
			float64(s.LastReceived.UnixNano())/1e9)
	}
}

func ExampleStats() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := exampleClient(ctx, broker.URL(), mqttkeep.WithClientID("gateway-1"))
	defer client.Close(context.Background())

	// expvar: a program publishes the snapshot once, with
	// expvar.Publish("mqttkeep", stats), and /debug/vars (net/http's
	// DefaultServeMux) shows it as JSON, State by its name.
	stats := expvar.Func(func() any { return client.Stats() })
	var vars struct{ State string }
	if err := json.Unmarshal([]byte(stats.String()), &vars); err != nil {
		log.Fatal(err)
	}
	fmt.Println("expvar state:", vars.State)

	// Prometheus: the text format, written by hand.
	if _, err := client.Ping(ctx); err != nil {
		log.Fatal(err)
	}
	s := client.Stats()
	s.PingRTTLast = 1500 * time.Microsecond // fixed for the example's output
	s.LastReceived = time.Time{}
	writePrometheus(os.Stdout, client.ClientID(), s)
	// Output:
	// expvar state: connected
	// # HELP mqttkeep_connected 1 while a connection is up.
	// # TYPE mqttkeep_connected gauge
	// mqttkeep_connected{client="gateway-1"} 1
	// # HELP mqttkeep_connects_total Successful CONNACKs.
	// # TYPE mqttkeep_connects_total counter
	// mqttkeep_connects_total{client="gateway-1"} 1
	// # HELP mqttkeep_disconnects_total Connections lost or closed after a CONNACK.
	// # TYPE mqttkeep_disconnects_total counter
	// mqttkeep_disconnects_total{client="gateway-1"} 0
	// # HELP mqttkeep_ping_rtt_seconds Round trip of the latest PINGREQ.
	// # TYPE mqttkeep_ping_rtt_seconds gauge
	// mqttkeep_ping_rtt_seconds{client="gateway-1"} 0.0015
	// # HELP mqttkeep_messages_received_total Messages handed to a handler.
	// # TYPE mqttkeep_messages_received_total counter
	// mqttkeep_messages_received_total{client="gateway-1"} 0
	// # HELP mqttkeep_messages_dropped_total QoS 0 messages dropped: handlers behind.
	// # TYPE mqttkeep_messages_dropped_total counter
	// mqttkeep_messages_dropped_total{client="gateway-1"} 0
	// # HELP mqttkeep_queued_messages Accepted messages not yet written.
	// # TYPE mqttkeep_queued_messages gauge
	// mqttkeep_queued_messages{client="gateway-1"} 0
}
