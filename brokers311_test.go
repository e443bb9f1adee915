package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/activemq"
	"github.com/mqttkeep/mqttkeep/internal/mosquitto"
	"github.com/mqttkeep/mqttkeep/internal/rabbitmq"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// broker311 is an MQTT 3.1.1 broker the guarantee tests run against: its
// URL and what a client needs for it (credentials; the version, forced
// for brokers that also speak 5).
type broker311 struct {
	name string
	url  string
	opts []mqttkeep.Option
	// negotiated: the broker refuses MQTT 5, so ProtocolAuto finds 3.1.1.
	negotiated bool
	// copies is how many copies of one message the broker sends a client
	// whose subscriptions overlap (same QoS): 1 per client, or 1 per
	// matching subscription.
	perSubscription bool
}

// on311Brokers runs f against every broker that speaks MQTT 3.1.1 here:
// RabbitMQ 3.10 and ActiveMQ 5.17 (3.1.1 only: the client negotiates),
// and the embedded broker and Mosquitto held to 3.1.1. RabbitMQ and
// ActiveMQ are the test binary's shared instances.
func on311Brokers(t *testing.T, f func(t *testing.T, b broker311)) {
	t.Run("rabbitmq", func(t *testing.T) {
		t.Parallel()
		n := rabbitmq.Shared(t)
		user, pass := n.Credentials()
		f(t, broker311{name: "rabbitmq", url: "mqtt://" + n.MQTTAddr(), negotiated: true,
			opts: []mqttkeep.Option{mqttkeep.WithCredentials(user, pass)}})
	})
	t.Run("activemq", func(t *testing.T) {
		t.Parallel()
		b := activemq.Shared(t)
		f(t, broker311{name: "activemq", url: "mqtt://" + b.MQTTAddr(), negotiated: true})
	})
	t.Run("mochi", func(t *testing.T) {
		t.Parallel()
		f(t, broker311{name: "mochi", url: mqttkeeptest.NewBroker(t).URL(), perSubscription: true,
			opts: []mqttkeep.Option{mqttkeep.WithProtocolVersion(mqttkeep.MQTT311)}})
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		f(t, broker311{name: "mosquitto", url: mosquitto.Start(t).URL(), perSubscription: true,
			opts: []mqttkeep.Option{mqttkeep.WithProtocolVersion(mqttkeep.MQTT311)}})
	})
}

// client311 is a client of b with id (unique per test and broker).
func client311(t *testing.T, b broker311, id string, opts ...mqttkeep.Option) *mqttkeep.Client {
	t.Helper()
	return newClient(t, append(append([]mqttkeep.Option{mqttkeep.WithServer(b.url), mqttkeep.WithClientID(id)}, b.opts...), opts...)...)
}

func uniqueID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// The library with its defaults on every 3.1.1 broker: it connects
// (negotiating where the broker refuses MQTT 5), delivers QoS 1 in order
// per publisher, and refuses at call time what 3.1.1 cannot carry.
func TestMQTT311Brokers(t *testing.T) {
	on311Brokers(t, func(t *testing.T, b broker311) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		topic := uniqueID("v311/" + b.name)
		got := newCollector()
		sub := client311(t, b, uniqueID("sub"))
		connect(t, sub)
		caps, _ := sub.Capabilities()
		assert.Equal(t, mqttkeep.MQTT311, caps.ProtocolVersion)
		require.NoError(t, sub.Subscribe(ctx, topic, 1, got.handle))
		pub := client311(t, b, uniqueID("pub"))
		connect(t, pub)
		for i := range 20 {
			require.NoError(t, pub.Publish(ctx, topic, []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)))
		}
		msgs := got.wait(t, 20, 20*time.Second)
		for i, m := range msgs {
			assert.Equal(t, strconv.Itoa(i), string(m.Payload), "QoS 1 in order from one publisher")
			assert.Equal(t, mqttkeep.QoS1, m.QoS)
		}

		// What MQTT 3.1.1 cannot carry is refused at call time, named.
		err := pub.Publish(ctx, topic, []byte("x"), mqttkeep.WithQoS(1), mqttkeep.WithContentType("text/plain"))
		assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
		assert.Contains(t, err.Error(), "MQTT 3.1.1")
		_, err = pub.PublishAsync(ctx, topic, nil, mqttkeep.WithMessageExpiry(time.Hour))
		assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
		assert.ErrorIs(t, sub.Subscribe(ctx, topic+"/nl", 1, got.handle, mqttkeep.WithNoLocal()), mqttkeep.ErrNotSupported)
		_, err = pub.Request(ctx, topic+"/rpc", []byte("ping"))
		assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
	})
}

// A will with MQTT 5 properties or a delay cannot be sent to a 3.1.1
// broker: the attempt fails for good, naming it, instead of dropping them.
func TestMQTT311WillPropertiesRefused(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithProtocolVersion(mqttkeep.MQTT311),
		mqttkeep.WithWill(mqttkeep.Message{Topic: "will/x", Payload: []byte("gone")}, 5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Connect(ctx)
	assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
	assert.ErrorIs(t, err, mqttkeep.ErrInvalidOption)
	assert.Equal(t, mqttkeep.StateStopped, c.State())
	assert.Zero(t, b.Connects())
	var rc *mqttkeep.ReasonCodeError
	assert.False(t, errors.As(err, &rc))
}
