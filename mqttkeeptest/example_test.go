package mqttkeeptest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// The broker records what clients send, so a test can check what its
// program published.
func ExampleStartBroker() {
	// In a test: broker := mqttkeeptest.NewBroker(t), closed when the test ends.
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	client, err := mqttkeep.New(mqttkeep.WithServer(broker.URL()), mqttkeep.WithClientID("sensor-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	// QoS 1: Publish returns once the broker acknowledged the message.
	if err := client.Publish(ctx, "sensors/1/temp", []byte("21.5"), mqttkeep.WithQoS(1)); err != nil {
		log.Fatal(err)
	}

	fmt.Printf("%s\n", broker.Payloads("sensors/1/temp"))
	fmt.Println("PUBLISH packets from sensor-1:", broker.Packets("sensor-1", 3))
	// Output:
	// [21.5]
	// PUBLISH packets from sensor-1: 1
}

// A program's reconnect after a broker restart: the restarted broker has
// lost every session, so the client must reconnect and subscribe again.
func ExampleBroker_Restart() {
	broker, err := mqttkeeptest.StartBroker() // in a test: mqttkeeptest.NewBroker(t)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	connected := make(chan mqttkeep.ConnectEvent, 4)
	client, err := mqttkeep.New(
		mqttkeep.WithServer(broker.URL()),
		// Retry fast, so that the example (or test) is quick.
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}}),
	)
	if err != nil {
		log.Fatal(err)
	}
	client.OnConnect(func(e mqttkeep.ConnectEvent) { connected <- e })
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	<-connected
	alerts := make(chan string, 1)
	err = client.Subscribe(ctx, "alerts/#", 1, func(m *mqttkeep.Message) { alerts <- string(m.Payload) })
	if err != nil {
		log.Fatal(err)
	}

	// The broker crashes and comes back on the same port, empty.
	if err := broker.Restart(); err != nil {
		log.Fatal(err)
	}
	select {
	case e := <-connected:
		fmt.Println("reconnected; session present:", e.SessionPresent)
	case <-ctx.Done():
		log.Fatal("no reconnect")
	}

	// The client subscribed again: a message published now reaches it.
	if err := broker.Publish("alerts/door", []byte("open"), 1); err != nil {
		log.Fatal(err)
	}
	select {
	case a := <-alerts:
		fmt.Println("alert:", a)
	case <-ctx.Done():
		log.Fatal("the subscription was not restored")
	}
	// Output:
	// reconnected; session present: false
	// alert: open
}

// A program must notice a dead link by itself: when the proxy blackholes
// the connection, nothing arrives and nothing is closed, so only the
// client's keep alive can tell.
func ExampleProxy_Blackhole() {
	broker, err := mqttkeeptest.StartBroker() // in a test: mqttkeeptest.NewBroker(t)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	proxy, err := mqttkeeptest.StartProxy(broker.Addr()) // in a test: mqttkeeptest.NewProxy(t, broker.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer proxy.Close()

	lost := make(chan mqttkeep.DisconnectEvent, 1)
	client, err := mqttkeep.New(
		mqttkeep.WithServer(proxy.URL()),
		// A dead link is reported at most one keep alive after the last
		// packet received: 2 s here.
		mqttkeep.WithKeepAlive(2*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	client.OnDisconnect(func(e mqttkeep.DisconnectEvent) {
		select {
		case lost <- e:
		default:
		}
	})
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}

	proxy.Blackhole()
	select {
	case e := <-lost:
		fmt.Println("dead link noticed by a ping timeout:", errors.Is(e.Err, mqttkeep.ErrPingTimeout))
		fmt.Println("reconnecting:", e.WillReconnect)
	case <-ctx.Done():
		log.Fatal("the dead link went unnoticed")
	}
	// Output:
	// dead link noticed by a ping timeout: true
	// reconnecting: true
}
