package mqttkeep_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// exampleBroker starts the embedded broker the examples talk to; a
// program connects to its real broker instead.
func exampleBroker() *mqttkeeptest.Broker {
	broker, err := mqttkeeptest.StartBroker()
	if err != nil {
		log.Fatal(err)
	}
	return broker
}

// exampleClient connects a client to url with opts, or exits.
func exampleClient(ctx context.Context, url string, opts ...mqttkeep.Option) *mqttkeep.Client {
	client, err := mqttkeep.New(append([]mqttkeep.Option{mqttkeep.WithServer(url)}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	return client
}

func ExampleWithSubscription() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan string, 1)
	// Given in New, the subscription's handler exists before the first
	// CONNACK, so a resumed session's backlog (WithCleanStart(false)) is
	// handled, not acknowledged unseen. NoLocal: not our own messages.
	client := exampleClient(ctx, broker.URL(),
		mqttkeep.WithSubscription("alerts/#", 1, func(m *mqttkeep.Message) {
			got <- m.Topic + ": " + string(m.Payload)
		}, mqttkeep.WithNoLocal()),
	)
	defer client.Close(context.Background())

	other := exampleClient(ctx, broker.URL())
	defer other.Close(context.Background())
	if err := client.Publish(ctx, "alerts/self", []byte("not delivered back"), mqttkeep.WithQoS(1)); err != nil {
		log.Fatal(err)
	}
	if err := other.Publish(ctx, "alerts/door", []byte("open"), mqttkeep.WithQoS(1)); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: alerts/door: open
}

func ExampleWithManualAck() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The handler hands each message to a worker pool and returns; a
	// message is acknowledged when its work is done (m.Ack), so one that
	// was not finished when the process died is sent again.
	jobs := make(chan *mqttkeep.Message, 16)
	var done sync.WaitGroup
	done.Add(10)
	for range 4 {
		go func() {
			for m := range jobs {
				_ = m.Payload // the work
				m.Ack()
				done.Done()
			}
		}()
	}
	worker := exampleClient(ctx, broker.URL(), mqttkeep.WithManualAck(),
		mqttkeep.WithSubscription("jobs", 1, func(m *mqttkeep.Message) { jobs <- m }))
	defer worker.Close(context.Background())

	producer := exampleClient(ctx, broker.URL())
	defer producer.Close(context.Background())
	for i := range 10 {
		if err := producer.Publish(ctx, "jobs", fmt.Appendf(nil, "job %d", i), mqttkeep.WithQoS(1)); err != nil {
			log.Fatal(err)
		}
	}
	done.Wait()
	close(jobs)
	fmt.Println("jobs done and acknowledged:", 10)
	// Output: jobs done and acknowledged: 10
}

func ExampleClient_Drain() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var handled atomic.Int32
	client := exampleClient(ctx, broker.URL(),
		mqttkeep.WithSubscription("work", 1, func(*mqttkeep.Message) {
			time.Sleep(10 * time.Millisecond) // slow work
			handled.Add(1)
		}))
	for range 20 { // to itself: the broker has them all on their way when the last PUBACK comes
		if err := client.Publish(ctx, "work", []byte("x"), mqttkeep.WithQoS(1)); err != nil {
			log.Fatal(err)
		}
	}
	// Drain unsubscribes, runs every message already received through
	// its handler, completes every accepted publish, then disconnects:
	// nothing received is left unhandled, as Close would leave it.
	if err := client.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	st := client.Stats()
	fmt.Println("received:", st.InPublishes, "handled:", handled.Load(), "abandoned:", st.InAbandoned)
	// Output: received: 20 handled: 20 abandoned: 0
}

func ExampleClient_PublishAsync() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := exampleClient(ctx, broker.URL())
	defer client.Close(context.Background())

	// A sensor keeps its cadence whatever the broker does: PublishAsync
	// returns once the message is accepted; it leaves in order, across
	// reconnects, and the result tells how it ended.
	var results []*mqttkeep.PublishResult
	for i := range 5 {
		r, err := client.PublishAsync(ctx, "sensors/hall/temp", fmt.Appendf(nil, "19.%d", i), mqttkeep.WithQoS(1))
		if err != nil { // ErrQueueFull, or bad input
			log.Fatal(err)
		}
		results = append(results, r)
	}
	// Flush waits for everything accepted so far.
	if err := client.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	// Nobody subscribes here: the broker says so with 0x10 (a success).
	for _, r := range results {
		fmt.Printf("%v 0x%02X %v\n", r.Err(), r.ReasonCode(), r.ReasonCode())
	}
	// Output:
	// <nil> 0x10 no matching subscribers
	// <nil> 0x10 no matching subscribers
	// <nil> 0x10 no matching subscribers
	// <nil> 0x10 no matching subscribers
	// <nil> 0x10 no matching subscribers
}

func ExampleWithStore() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dir, err := os.MkdirTemp("", "mqttkeep-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := filestore.Open(dir) // e.g. /var/lib/sensor/mqtt
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // after the client's Close

	// With a store, a QoS 1/2 Publish returns only once the message is on
	// disk (fsync), and a later process with the same store, client ID and
	// WithCleanStart(false) sends what this one had not completed.
	client := exampleClient(ctx, broker.URL(), mqttkeep.WithStore(store),
		mqttkeep.WithClientID("sensor-7"), mqttkeep.WithCleanStart(false),
		mqttkeep.WithSessionExpiry(time.Hour))
	defer client.Close(context.Background())
	r, err := client.PublishAsync(ctx, "sensors/7/temp", []byte("21.5"), mqttkeep.WithQoS(1))
	if err != nil {
		log.Fatal(err)
	}
	// Here the message is on disk; it survives a crash from now on.
	fmt.Println("delivered:", r.Wait(ctx))
	// Output: delivered: <nil>
}

func ExampleWithWill() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	status := make(chan string, 2)
	watcher := exampleClient(ctx, broker.URL(),
		mqttkeep.WithSubscription("status/#", 1, func(m *mqttkeep.Message) {
			status <- m.Topic + " " + string(m.Payload)
		}))
	defer watcher.Close(context.Background())

	// The broker publishes the will when the device's connection ends
	// without a normal DISCONNECT. A delay of 10*time.Second instead of 0
	// would let a reconnect within 10 s cancel it, so that a brief loss
	// does not flip a dashboard to "offline" and back.
	device := exampleClient(ctx, broker.URL(),
		mqttkeep.WithWill(mqttkeep.Message{Topic: "status/device-1", Payload: []byte("offline"), QoS: 1, Retain: true, PayloadUTF8: true}, 0))
	// CloseWithWill: shut down on purpose, and have the will published.
	if err := device.CloseWithWill(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-status)
	// Output: status/device-1 offline
}

func ExampleClient_Request() {
	broker := exampleBroker()
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A service answers requests on "svc/echo" with Respond, which uses
	// the request's response topic and correlation data.
	service := exampleClient(ctx, broker.URL())
	defer service.Close(context.Background())
	err := service.Subscribe(ctx, "svc/echo", 1, func(m *mqttkeep.Message) {
		if err := service.Respond(context.Background(), m, append([]byte("echo: "), m.Payload...)); err != nil {
			log.Print(err)
		}
	})
	if err != nil {
		log.Fatal(err)
	}

	client := exampleClient(ctx, broker.URL())
	defer client.Close(context.Background())
	resp, err := client.Request(ctx, "svc/echo", []byte("hello"))
	if err != nil { // ErrNoResponders when the broker says nobody listens
		log.Fatal(err)
	}
	fmt.Println(string(resp.Payload))
	// Output: echo: hello
}
