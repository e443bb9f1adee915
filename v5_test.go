package mqttkeep_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A will with properties and a delay: a loss that is repaired within the
// delay publishes nothing; one that is not publishes the will, properties
// intact, after the delay; CloseWithWill publishes it at once.
func TestWillPropertiesAndDelay(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		host := strings.TrimPrefix(url, "mqtt://")
		p := mqttkeeptest.NewProxy(t, host)
		wills := newCollector()
		watcher := newClient(t, mqttkeep.WithServer(url), mqttkeep.WithSubscription("wills/#", 1, wills.handle))
		connect(t, watcher)
		eventuallyTrue(t, "subscribed", func() bool { return watcher.Stats().PacketsIn >= 2 })
		ev := newEvents()
		dev := newClient(t, append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithClientID("willer"),
			mqttkeep.WithSessionExpiry(time.Minute),
			mqttkeep.WithWill(mqttkeep.Message{Topic: "wills/willer", Payload: []byte("offline"), QoS: 1,
				ContentType: "text/plain", UserProperties: []mqttkeep.UserProperty{{Key: "why", Value: "lost"}},
				CorrelationData: []byte{7}, MessageExpiry: time.Hour}, 2*time.Second),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 50 * time.Millisecond }}))...)
		connect(t, dev)

		// A loss repaired within the delay: no will.
		p.Reset()
		<-ev.lost
		require.NoError(t, dev.AwaitConnected(context.Background()))
		// The broker would have published by now if the reconnect had
		// not cancelled it; a ping round trip through it after 2.5 s says
		// it did not.
		time.Sleep(2500 * time.Millisecond) // the delay is the scenario
		_, err := watcher.Ping(context.Background())
		require.NoError(t, err)
		assert.Empty(t, wills.snapshot(), "a will published although the client came back within its delay")

		// A loss not repaired: the will, after the delay, properties intact.
		p.Refuse(true)
		p.Reset()
		lostAt := time.Now()
		m := wills.wait(t, 1, 10*time.Second)[0]
		waited := time.Since(lostAt)
		assert.Equal(t, "offline", string(m.Payload))
		assert.Equal(t, []mqttkeep.UserProperty{{Key: "why", Value: "lost"}}, m.UserProperties)
		if strings.HasSuffix(t.Name(), "mosquitto") {
			// mochi v2.7.9 keeps only a will's user properties and delay
			// (it drops content type, correlation data, message expiry).
			assert.Equal(t, "text/plain", m.ContentType)
			assert.Equal(t, []byte{7}, m.CorrelationData)
			assert.Positive(t, m.MessageExpiry)
		}
		assert.GreaterOrEqual(t, waited, 1500*time.Millisecond, "published before its delay")
		t.Logf("will published %v after the loss (delay 2 s)", waited.Round(time.Millisecond))
	})
}

// CloseWithWill sends DISCONNECT 0x04: the broker publishes the will.
func TestCloseWithWill(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		wills := newCollector()
		watcher := newClient(t, mqttkeep.WithServer(url), mqttkeep.WithSubscription("bye/#", 1, wills.handle))
		connect(t, watcher)
		eventuallyTrue(t, "subscribed", func() bool { return watcher.Stats().PacketsIn >= 2 })
		dev, err := mqttkeep.New(mqttkeep.WithServer(url), mqttkeep.WithWill(mqttkeep.Message{Topic: "bye/dev", Payload: []byte("leaving"), QoS: 1}, 0))
		require.NoError(t, err)
		connect(t, dev)
		require.NoError(t, dev.CloseWithWill(context.Background()))
		assert.Equal(t, "leaving", string(wills.wait(t, 1, 10*time.Second)[0].Payload))

		// A plain Close publishes nothing.
		quiet, err := mqttkeep.New(mqttkeep.WithServer(url), mqttkeep.WithWill(mqttkeep.Message{Topic: "bye/quiet", Payload: []byte("x"), QoS: 1}, 0))
		require.NoError(t, err)
		connect(t, quiet)
		require.NoError(t, quiet.Close(context.Background()))
		_, err = watcher.Ping(context.Background())
		require.NoError(t, err)
		for _, m := range wills.snapshot() {
			assert.NotEqual(t, "bye/quiet", m.Topic)
		}
	})
}

// Subscribe options: No Local keeps our own messages away, Retain
// Handling 2 sends no retained message on subscribing, Retain As
// Published keeps the RETAIN flag of live messages; they are sent again
// with a restored subscription.
func TestSubscribeOptions(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		pub := newClient(t, mqttkeep.WithServer(url))
		connect(t, pub)
		require.NoError(t, pub.Publish(ctx, "opts/retained", []byte("old"), mqttkeep.WithQoS(1), mqttkeep.WithRetain()))
		// mochi writes the PUBACK before it routes the message: without
		// this, the subscription below could get it as a live message.
		require.NoError(t, pub.Flush(ctx))

		c := newClient(t, mqttkeep.WithServer(url))
		connect(t, c)
		local, noRetained, asPublished := newCollector(), newCollector(), newCollector()
		require.NoError(t, c.Subscribe(ctx, "opts/local", 1, local.handle, mqttkeep.WithNoLocal()))
		require.NoError(t, c.Subscribe(ctx, "opts/retained", 1, noRetained.handle, mqttkeep.WithRetainHandling(mqttkeep.DontSendRetained)))
		require.NoError(t, c.Subscribe(ctx, "opts/rap", 1, asPublished.handle, mqttkeep.WithRetainAsPublished()))

		require.NoError(t, c.Publish(ctx, "opts/local", []byte("mine"), mqttkeep.WithQoS(1)))
		require.NoError(t, pub.Publish(ctx, "opts/local", []byte("theirs"), mqttkeep.WithQoS(1)))
		require.NoError(t, pub.Publish(ctx, "opts/rap", []byte("kept"), mqttkeep.WithQoS(1), mqttkeep.WithRetain()))
		got := local.wait(t, 1, 10*time.Second)
		assert.Equal(t, "theirs", string(got[0].Payload), "No Local: our own message is not delivered")
		assert.True(t, asPublished.wait(t, 1, 10*time.Second)[0].Retain, "Retain As Published")
		_, err := c.Ping(ctx)
		require.NoError(t, err)
		assert.Empty(t, noRetained.snapshot(), "Retain Handling 2: no retained message")
		for _, m := range local.snapshot() {
			assert.NotEqual(t, "mine", string(m.Payload))
		}
		require.NoError(t, pub.Publish(ctx, "opts/rap", nil, mqttkeep.WithQoS(1), mqttkeep.WithRetain())) // clear it
		require.NoError(t, pub.Publish(ctx, "opts/retained", nil, mqttkeep.WithQoS(1), mqttkeep.WithRetain()))
	})
}

// Outbound topic aliases: within the broker's Topic Alias Maximum each
// topic is sent once, then as a two-byte alias; subscribers see the right
// topics. For a 64 B payload on a 40-byte topic a message takes 109 bytes
// on the wire plain and 72 with its alias (Mosquitto announces a maximum
// of 10). mochi v2.7.9 announces none, so MQTT allows no alias towards it
// and the client sends none.
func TestOutboundTopicAliases(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		topic := "aliases/" + strings.Repeat("t", 32) // 40 bytes
		require.Len(t, topic, 40)
		got := newCollector()
		sub := newClient(t, mqttkeep.WithServer(url), mqttkeep.WithSubscription("aliases/#", 0, got.handle))
		connect(t, sub)
		eventuallyTrue(t, "subscribed", func() bool { return sub.Stats().PacketsIn >= 2 })
		perMessage := func(opts ...mqttkeep.Option) float64 {
			c := newClient(t, append(opts, mqttkeep.WithServer(url), mqttkeep.WithKeepAlive(0))...)
			connect(t, c)
			ctx := context.Background()
			// BytesOut counts a write when it returned, which may be just
			// after the PINGRESP that answers the PINGREQ it carried: after
			// two pings in a row everything before the second PINGREQ is
			// counted, and that one (2 bytes) may or may not be.
			settled := func() uint64 {
				for range 2 {
					_, err := c.Ping(ctx)
					require.NoError(t, err)
				}
				return c.Stats().BytesOut
			}
			require.NoError(t, c.Publish(ctx, topic, make([]byte, 64))) // the first one sets the alias
			before := settled()
			for range 100 {
				require.NoError(t, c.Publish(ctx, topic, make([]byte, 64)))
			}
			after := settled()
			// after−before = 100 messages + 4 bytes of PINGREQs, ± 2 bytes.
			return float64(after-before-4) / 100
		}
		plain := perMessage()
		aliased := perMessage(mqttkeep.WithOutboundTopicAliases())
		eventuallyTrue(t, "all 202 delivered", func() bool { return len(got.snapshot()) >= 202 })
		for _, m := range got.snapshot() {
			assert.Equal(t, topic, m.Topic)
		}
		t.Logf("64 B payload on a 40-byte topic: %.0f bytes per message plain, %.0f with aliases", plain, aliased)
		assert.InDelta(t, 109.0, plain, 0.021)
		if strings.HasSuffix(t.Name(), "mosquitto") {
			assert.InDelta(t, 72.0, aliased, 0.021)
		} else {
			assert.InDelta(t, plain, aliased, 0.041, "no alias without the broker's Topic Alias Maximum")
		}
	})
}

// Inbound topic aliases (opt-in): the broker may send a topic once and
// then its alias; the client gives handlers the full topic.
func TestInboundTopicAliases(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	topic := "inbound/" + strings.Repeat("x", 32)
	got := newCollector()
	sub := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithInboundTopicAliases(8),
		mqttkeep.WithSubscription("inbound/#", 0, got.handle))
	connect(t, sub)
	eventuallyTrue(t, "subscribed", func() bool { return sub.Stats().PacketsIn >= 2 })
	publishSeq(t, b.URL(), topic, 50)
	msgs := got.wait(t, 50, 10*time.Second)
	for _, m := range msgs {
		assert.Equal(t, topic, m.Topic)
	}
	perMessage := float64(sub.Stats().BytesIn) / 50
	t.Logf("inbound with aliases: %.0f bytes per message received (topic 40 bytes)", perMessage)
	assert.Less(t, perMessage, 40.0, "the topic did not come with every message")
}

// The broker's capabilities reach ConnectEvent and Capabilities; an
// empty client ID gets the broker's assigned one, which every reconnect
// then uses (and so resumes the session).
func TestCapabilitiesAndAssignedClientID(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		ev := newEvents()
		host := strings.TrimPrefix(url, "mqtt://")
		p := mqttkeeptest.NewProxy(t, host)
		c := newClient(t, append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithClientID(""),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 20 * time.Millisecond }}))...)
		connect(t, c)
		first := ev.connectEvent(t, 0)
		assigned := first.Capabilities.AssignedClientID
		require.NotEmpty(t, assigned, "the broker assigned an ID")
		assert.Equal(t, assigned, c.ClientID())
		caps, ok := c.Capabilities()
		require.True(t, ok)
		assert.Equal(t, first.Capabilities, caps)
		assert.Positive(t, caps.ReceiveMaximum)
		t.Logf("capabilities: %+v", caps)
		p.Reset()
		<-ev.lost
		second := ev.connectEvent(t, 1)
		assert.True(t, second.SessionPresent, "the reconnect used the assigned ID and resumed the session")
		assert.Equal(t, assigned, c.ClientID())
	})
}

// Request and Respond: a responder answers on the requester's response
// topic with its correlation data; nobody subscribed is ErrNoResponders
// where the broker says so (Mosquitto answers PUBACK 0x10; mochi does
// not, which MQTT allows: the request then waits for its ctx).
func TestRequestResponse(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var responder *mqttkeep.Client
		responder = newClient(t, mqttkeep.WithServer(url), mqttkeep.WithSubscription("svc/upper", 1, func(m *mqttkeep.Message) {
			_ = responder.Respond(context.Background(), m, bytes.ToUpper(m.Payload), mqttkeep.WithQoS(1))
		}))
		connect(t, responder)
		eventuallyTrue(t, "subscribed", func() bool { return responder.Stats().PacketsIn >= 2 })
		c := newClient(t, mqttkeep.WithServer(url))
		connect(t, c)
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Request(ctx, "svc/upper", []byte(fmt.Sprint("hello ", i)))
				if assert.NoError(t, err) {
					assert.Equal(t, fmt.Sprint("HELLO ", i), string(resp.Payload))
				}
			}()
		}
		wg.Wait()
		short, done := context.WithTimeout(ctx, 2*time.Second)
		defer done()
		_, err := c.Request(short, "svc/nobody", []byte("?"))
		require.Error(t, err)
		if strings.Contains(t.Name(), "mosquitto") {
			assert.ErrorIs(t, err, mqttkeep.ErrNoResponders)
		}
		res, err := c.PublishAsync(ctx, "svc/nobody", []byte("x"), mqttkeep.WithQoS(1))
		require.NoError(t, err)
		require.NoError(t, res.Wait(ctx))
		t.Logf("PUBACK reason code with no subscribers: 0x%02X", res.ReasonCode())
		assert.ErrorIs(t, c.Respond(ctx, &mqttkeep.Message{Topic: "x"}, nil), mqttkeep.ErrInvalidArgument)
	})
}
