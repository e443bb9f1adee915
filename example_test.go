package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/testbroker"
)

// startBroker starts an embedded broker on 127.0.0.1 so that the examples
// run on their own; a real program connects to its own broker instead.
func startBroker() (url string, stop func()) {
	b, err := testbroker.New()
	if err != nil {
		log.Fatal(err)
	}
	if err := b.ListenTCP(); err != nil {
		log.Fatal(err)
	}
	return b.URL(), b.Close
}

func ExampleNew() {
	url, stop := startBroker()
	defer stop()

	client, err := mqttkeep.New(
		mqttkeep.WithServer(url),
		mqttkeep.WithKeepAlive(10*time.Second), // PINGREQ every 5 s when idle
		mqttkeep.WithOnDisconnect(func(e mqttkeep.DisconnectEvent) {
			if e.Err != nil { // nil: our own Close
				log.Printf("connection lost: %v (reconnecting: %v)", e.Err, e.WillReconnect)
			}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
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
	url, stop := startBroker()
	defer stop()
	client, err := mqttkeep.New(mqttkeep.WithServer(url))
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
	url, stop := startBroker()
	defer stop()
	client, err := mqttkeep.New(mqttkeep.WithServer(url))
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
	url, stop := startBroker()
	defer stop()
	// Keep alive 0 turns automatic pings off; Ping still works on demand.
	client, err := mqttkeep.New(mqttkeep.WithServer(url), mqttkeep.WithKeepAlive(0))
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
	b, err := testbroker.New()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	if err := b.ListenTCP(); err != nil {
		log.Fatal(err)
	}
	b.Refuse(0x86) // the broker rejects every CONNECT: bad user name or password

	client, err := mqttkeep.New(mqttkeep.WithServer(b.URL()), mqttkeep.WithCredentials("alice", "wrong"))
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
		fmt.Printf("refused: 0x%02X %s, final: %v\n", rc.Code, mqttkeep.ReasonCodeText(rc.Code), rc.Final())
	}
	fmt.Println(client.State())
	// Output:
	// refused: 0x86 bad user name or password, final: true
	// stopped
}
