package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

func ExampleNew() {
	// An embedded broker on 127.0.0.1, so that the example runs on its own;
	// a program connects to its real broker (mqtt://broker.lan:1883).
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	client, err := mqttkeep.New(
		mqttkeep.WithServer(broker.URL()),
		mqttkeep.WithKeepAlive(10*time.Second), // PINGREQ every 5 s when idle
	)
	if err != nil {
		log.Fatal(err)
	}
	client.OnDisconnect(func(e mqttkeep.DisconnectEvent) {
		if e.Err != nil { // nil: our own Close
			log.Printf("connection lost: %v (reconnecting: %v)", e.Err, e.WillReconnect)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	fmt.Println(client.State())
	// Output: connected
}

func ExampleClient_Publish() {
	// An embedded broker; a program connects to its real one instead.
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	client, err := mqttkeep.New(mqttkeep.WithServer(broker.URL()))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	// QoS 1: returns once the broker acknowledged the message.
	err = client.Publish(ctx, "sensors/kitchen/temp", []byte("21.5"),
		mqttkeep.WithQoS(1), mqttkeep.WithRetain(), mqttkeep.WithContentType("text/plain"))
	fmt.Println("published:", err == nil)

	// Bad input is refused before anything is sent.
	err = client.Publish(ctx, "sensors/+/temp", nil)
	fmt.Println(errors.Is(err, mqttkeep.ErrInvalidTopic))
	// Output:
	// published: true
	// true
}

func ExampleClient_Subscribe() {
	// An embedded broker; a program connects to its real one instead.
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	client, err := mqttkeep.New(mqttkeep.WithServer(broker.URL()))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	got := make(chan string, 1)
	// Remembered: restored after a reconnect that finds no session.
	err = client.Subscribe(ctx, "sensors/+/temp", 1, func(m *mqttkeep.Message) {
		got <- m.Topic + " = " + string(m.Payload)
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Publish(ctx, "sensors/hall/temp", []byte("19.0"), mqttkeep.WithQoS(1)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: sensors/hall/temp = 19.0
}

func ExampleClient_Ping() {
	// An embedded broker; a program connects to its real one instead.
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	// Keep alive 0 turns automatic pings off; Ping still works on demand.
	client, err := mqttkeep.New(mqttkeep.WithServer(broker.URL()), mqttkeep.WithKeepAlive(0))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	rtt, err := client.Ping(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("round trip measured:", rtt > 0)
	fmt.Println("pings answered:", client.Stats().PingResponses)
	// Output:
	// round trip measured: true
	// pings answered: 1
}

func ExampleReasonCodeError() {
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	broker.Refuse(0x86) // the broker rejects every CONNECT: bad user name or password

	client, err := mqttkeep.New(mqttkeep.WithServer(broker.URL()), mqttkeep.WithCredentials("alice", "wrong"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Retrying cannot fix this refusal: Connect returns it after one attempt.
	err = client.Connect(ctx)
	var rc *mqttkeep.ReasonCodeError
	if errors.As(err, &rc) {
		fmt.Printf("refused: 0x%02X %s, final: %v\n", rc.Code, rc.Code, rc.Final())
	}
	fmt.Println(client.State())
	// Output:
	// refused: 0x86 bad user name or password, final: true
	// stopped
}
