package mqttkeep_test

import (
	"context"
	"fmt"
	"log"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

func ExampleClient_Capabilities() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := exampleClient(ctx, broker.URL())
	defer client.Close(context.Background())

	// What the broker announced in its CONNACK (also in ConnectEvent).
	caps, _ := client.Capabilities()
	fmt.Println("maximum QoS:", caps.MaximumQoS)
	fmt.Println("retain available:", caps.RetainAvailable)
	fmt.Println("subscription identifiers:", caps.SubscriptionIDsAvailable)
	fmt.Println("shared subscriptions:", caps.SharedSubscriptionsAvailable)
	fmt.Println("topic aliases accepted:", caps.TopicAliasMaximum)
	// Output:
	// maximum QoS: QoS 2
	// retain available: true
	// subscription identifiers: true
	// shared subscriptions: true
	// topic aliases accepted: 0
}

func ExampleWithCredentialsFunc() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Called before every CONNECT, for tokens that expire (a JWT, an Azure
	// SAS token, a presigned WebSocket URL in Credentials.URL). The
	// password never appears in logs or errors.
	var asked atomic.Int32
	client := exampleClient(ctx, broker.URL(),
		mqttkeep.WithCredentialsFunc(func(ctx context.Context, server *url.URL) (mqttkeep.Credentials, error) {
			asked.Add(1)
			return mqttkeep.Credentials{Username: "device-7", Password: "token-" + time.Now().Format(time.RFC3339)}, nil
		}))
	defer client.Close(context.Background())
	fmt.Println("credentials asked for:", asked.Load())
	// Output: credentials asked for: 1
}

func ExampleWithConnectPacket() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Advanced: a property no option covers, edited into every CONNECT just
	// before it is sent (and checked like an option).
	client := exampleClient(ctx, broker.URL(),
		mqttkeep.WithConnectPacket(func(p *mqttkeep.ConnectPacket) {
			p.UserProperties = append(p.UserProperties, mqttkeep.UserProperty{Key: "model", Value: "v2"})
		}))
	defer client.Close(context.Background())
	fmt.Println(client.State())
	// Output: connected
}

func ExampleWithRetainHandling() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := exampleClient(ctx, broker.URL())
	defer client.Close(context.Background())

	if err := client.Publish(ctx, "config/mode", []byte("retained"), mqttkeep.WithQoS(1), mqttkeep.WithRetain()); err != nil {
		log.Fatal(err)
	}
	got := make(chan string, 2)
	// Only what is published from now on, not the retained message.
	err := client.Subscribe(ctx, "config/#", 1, func(m *mqttkeep.Message) { got <- string(m.Payload) },
		mqttkeep.WithRetainHandling(mqttkeep.DontSendRetained))
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Publish(ctx, "config/mode", []byte("live"), mqttkeep.WithQoS(1)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: live
}
