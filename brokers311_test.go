package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// perSubscription: the broker sends a client whose subscriptions
	// overlap (same QoS) one copy of a message per matching subscription,
	// not one per client.
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
		f(t, broker311{name: "activemq", url: "mqtt://" + b.MQTTAddr(), negotiated: true, perSubscription: true})
	})
	t.Run("mochi", func(t *testing.T) {
		t.Parallel()
		f(t, broker311{name: "mochi", url: mqttkeeptest.NewBroker(t).URL(),
			opts: []mqttkeep.Option{mqttkeep.WithProtocolVersion(mqttkeep.MQTT311)}})
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		f(t, broker311{name: "mosquitto", url: mosquitto.Start(t).URL(),
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
		assert.ErrorIs(t, sub.Subscribe(ctx, topic+"/up", 1, got.handle, mqttkeep.WithSubscriptionUserProperty("k", "v")), mqttkeep.ErrNotSupported)
		assert.ErrorIs(t, pub.Publish(ctx, topic, nil, mqttkeep.WithUserProperty("k", "v")), mqttkeep.ErrNotSupported)
		_, err = pub.Request(ctx, topic+"/rpc", []byte("ping"))
		assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
	})
}

// What a CONNECT carries that 3.1.1 cannot — a will with MQTT 5
// properties or a delay, enhanced authentication, CONNECT user properties
// — fails the attempt for good, naming it, instead of being dropped.
func TestMQTT311ConnectFeaturesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, what string
		opt        mqttkeep.Option
	}{
		{"will delay", "will", mqttkeep.WithWill(mqttkeep.Message{Topic: "will/x", Payload: []byte("gone")}, 5*time.Second)},
		{"will properties", "will", mqttkeep.WithWill(mqttkeep.Message{Topic: "will/x", ContentType: "text/plain"}, 0)},
		{"enhanced authentication", "enhanced authentication", mqttkeep.WithAuthenticator(&challengeAuth{secret: []byte("s")})},
		{"CONNECT user properties", "CONNECT user properties", mqttkeep.WithConnectPacket(func(p *mqttkeep.ConnectPacket) {
			p.UserProperties = append(p.UserProperties, mqttkeep.UserProperty{Key: "model", Value: "v2"})
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t)
			c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithProtocolVersion(mqttkeep.MQTT311), tc.opt)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Connect(ctx)
			assert.ErrorIs(t, err, mqttkeep.ErrNotSupported)
			assert.ErrorIs(t, err, mqttkeep.ErrInvalidOption)
			assert.Contains(t, err.Error(), tc.what)
			assert.Equal(t, mqttkeep.StateStopped, c.State())
			assert.Zero(t, b.Connects())
			var rc *mqttkeep.ReasonCodeError
			assert.False(t, errors.As(err, &rc))
		})
	}
}

// QoS 2 on 3.1.1: exactly once where the broker has it; RabbitMQ 3.10,
// which has no QoS 2, answers the PUBLISH with PUBACK and grants QoS 1 on
// SUBSCRIBE. The client says so instead of waiting for a PUBREC that
// never comes: the publish fails with ErrNotSupported (the message was
// delivered at least once), and later QoS 2 publishes are refused at once.
func TestMQTT311QoS2(t *testing.T) {
	on311Brokers(t, func(t *testing.T, b broker311) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		topic := uniqueID("q2/" + b.name)
		got := newCollector()
		sub := client311(t, b, uniqueID("sub"))
		connect(t, sub)
		require.NoError(t, sub.Subscribe(ctx, topic, 2, got.handle))
		pub := client311(t, b, uniqueID("pub"))
		connect(t, pub)
		err := pub.Publish(ctx, topic, []byte("once"), mqttkeep.WithQoS(2))
		msgs := got.wait(t, 1, 20*time.Second)
		assert.Equal(t, "once", string(msgs[0].Payload))
		if b.name != "rabbitmq" {
			require.NoError(t, err)
			assert.Equal(t, mqttkeep.QoS2, msgs[0].QoS)
			return
		}
		require.ErrorIs(t, err, mqttkeep.ErrNotSupported)
		assert.Contains(t, err.Error(), "PUBACK")
		assert.Equal(t, mqttkeep.QoS1, msgs[0].QoS, "RabbitMQ grants QoS 1")
		caps, _ := pub.Capabilities()
		assert.Equal(t, mqttkeep.QoS1, caps.MaximumQoS, "learnt from the PUBACK")
		assert.ErrorIs(t, pub.Publish(ctx, topic, []byte("again"), mqttkeep.WithQoS(2)), mqttkeep.ErrInvalidQoS)
	})
}

// Connect, then Subscribe, on a resumed 3.1.1 session: the backlog that
// arrives first is held for the subscription, and all 20 are handled. ActiveMQ 5.17
// resumes the session without ever setting Session Present; the client
// then restores its subscriptions, and the backlog is handled all the
// same.
func TestMQTT311ResumedBacklog(t *testing.T) {
	on311Brokers(t, func(t *testing.T, b broker311) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		id, topic := uniqueID("backlog"), uniqueID("backlog/"+b.name)
		session := []mqttkeep.Option{mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour)}
		first := client311(t, b, id, session...)
		connect(t, first)
		require.NoError(t, first.Subscribe(ctx, topic, 1, func(*mqttkeep.Message) {}))
		require.NoError(t, first.Close(ctx)) // WithSessionExpiry: the session stays
		pub := client311(t, b, uniqueID("pub"))
		connect(t, pub)
		for i := 1; i <= 20; i++ {
			require.NoError(t, pub.Publish(ctx, topic, []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)))
		}
		second := client311(t, b, id, session...)
		connect(t, second)
		// All 20 are held, or as many as the broker sends unacknowledged:
		// RabbitMQ's MQTT prefetch is 10.
		eventuallyTrue(t, "messages held", func() bool { return second.Stats().InHeld > 0 })
		_, err := second.Ping(ctx) // what the broker could send has come
		require.NoError(t, err)
		t.Logf("%s: %d messages held before Subscribe", b.name, second.Stats().InHeld)
		got := newSeqCounter(0)
		require.NoError(t, second.Subscribe(ctx, topic, 1, got.handle))
		eventuallyTrue(t, "20 handled", func() bool { return got.total.Load() >= 20 })
		for i := 1; i <= 20; i++ {
			assert.Positive(t, got.seen()[i], "message %d", i)
		}
		// A program that is done with the session ends it (3.1.1: a
		// Clean Session connection on Close).
		done := client311(t, b, id)
		connect(t, done)
		require.NoError(t, done.Close(ctx))
	})
}

// A silent link death on 3.1.1 is found within the same bound as on 5:
// K/2 + ping timeout = K with the defaults (2 s here, plus scheduling).
func TestMQTT311DetectionWithinBound(t *testing.T) {
	on311Brokers(t, func(t *testing.T, b broker311) {
		const k = 2 * time.Second
		addr, _ := strings.CutPrefix(b.url, "mqtt://")
		p := mqttkeeptest.NewProxy(t, addr)
		ev := newEvents()
		c := newClient(t, append(append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithClientID(uniqueID("detect")),
			mqttkeep.WithKeepAlive(k), mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }})),
			b.opts...)...)
		connect(t, c)
		_, err := c.Ping(context.Background()) // the link carried an exchange
		require.NoError(t, err)
		p.Blackhole()
		diedAt := time.Now()
		select {
		case e := <-ev.lost:
			took := time.Since(diedAt)
			t.Logf("%s: dead link reported after %v (bound %v)", b.name, took, k)
			assert.ErrorIs(t, e.Err, mqttkeep.ErrPingTimeout)
			assert.LessOrEqual(t, took, k+tcpSlack)
		case <-time.After(k + 10*time.Second):
			t.Fatal("the dead link was not reported")
		}
	})
}

// Overlapping subscriptions on 3.1.1, where no Subscription Identifier
// says which subscription a copy is for: the client routes each copy by
// topic to every matching handler. A broker that sends one copy per client
// (RabbitMQ, whose client has one queue per QoS; mochi and Mosquitto on
// 3.1.1) gives each handler one call per message; one that sends a copy per
// matching subscription (ActiveMQ) gives each handler one call per copy —
// two here. Nothing is lost either way; on MQTT
// 5 the identifiers make it one call per handler on every broker.
func TestMQTT311OverlappingSubscriptions(t *testing.T) {
	on311Brokers(t, func(t *testing.T, b broker311) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		base := uniqueID("overlap/" + b.name)
		wide, narrow := newSeqCounter(0), newSeqCounter(0)
		sub := client311(t, b, uniqueID("sub"))
		connect(t, sub)
		require.NoError(t, sub.Subscribe(ctx, base+"/#", 1, wide.handle))
		require.NoError(t, sub.Subscribe(ctx, base+"/+/x", 1, narrow.handle))
		pub := client311(t, b, uniqueID("pub"))
		connect(t, pub)
		const n = 10
		for i := 1; i <= n; i++ {
			require.NoError(t, pub.Publish(ctx, base+"/a/x", []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)))
		}
		want := 1
		if b.perSubscription {
			want = 2
		}
		if !assert.Eventually(t, func() bool {
			return wide.total.Load() >= int64(n*want) && narrow.total.Load() >= int64(n*want)
		}, 20*time.Second, time.Millisecond, "every message to both handlers") {
			t.Logf("%s: wide %d narrow %d calls", b.name, wide.total.Load(), narrow.total.Load())
		}
		_, err := sub.Ping(ctx) // whatever else was coming has come
		require.NoError(t, err)
		for i := 1; i <= n; i++ {
			assert.Equal(t, want, wide.seen()[i], "wide handler, message %d", i)
			assert.Equal(t, want, narrow.seen()[i], "narrow handler, message %d", i)
		}
	})
}

// A broker restart on 3.1.1: the client comes back by itself, its session
// resumed (or its subscription restored), and what the publisher accepted
// while the broker was down (queued, then sent) arrives. Each broker is
// this test's own: RabbitMQ and ActiveMQ restarted on their data, mochi
// with a data directory, Mosquitto with persistence.
func TestMQTT311BrokerRestart(t *testing.T) {
	type restartable struct {
		name    string
		url     string
		opts    []mqttkeep.Option
		restart func() error
	}
	run := func(t *testing.T, b restartable) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic := uniqueID("restart/" + b.name)
		got := newSeqCounter(0)
		ev := newEvents()
		sub := newClient(t, append(append(ev.options(), mqttkeep.WithServer(b.url), mqttkeep.WithClientID(uniqueID("sub")),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour),
			mqttkeep.WithSubscription(topic, 1, got.handle)), b.opts...)...)
		connect(t, sub)
		require.NoError(t, ev.connectEvent(t, 0).ResubscribeErr)
		pub := client311(t, broker311{url: b.url, opts: b.opts}, uniqueID("pub"))
		connect(t, pub)
		for i := 1; i <= 10; i++ {
			require.NoError(t, pub.Publish(ctx, topic, []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)))
		}
		eventuallyTrue(t, "10 before the restart", func() bool { return got.total.Load() >= 10 })
		require.NoError(t, b.restart())
		var results []*mqttkeep.PublishResult
		for i := 11; i <= 20; i++ { // accepted whether or not the broker is back yet
			r, err := pub.PublishAsync(ctx, topic, []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1))
			require.NoError(t, err)
			results = append(results, r)
		}
		for _, r := range results {
			require.NoError(t, r.Wait(ctx))
		}
		eventuallyTrue(t, "all 20 handled", func() bool {
			seen := got.seen()
			for i := 1; i <= 20; i++ {
				if seen[i] == 0 {
					return false
				}
			}
			return true
		})
		connects, _ := ev.counts()
		t.Logf("%s: reconnected (%d connections), 20 of 20 handled, session present after the restart: %v",
			b.name, connects, ev.connectEvent(t, 1).SessionPresent)
	}
	t.Run("rabbitmq", func(t *testing.T) {
		t.Parallel()
		n := rabbitmq.Start(t, rabbitmq.WithQuorumSessions())
		user, pass := n.Credentials()
		run(t, restartable{"rabbitmq", "mqtt://" + n.MQTTAddr(), []mqttkeep.Option{mqttkeep.WithCredentials(user, pass)}, func() error {
			if err := n.Flush(); err != nil { // RabbitMQ 3.10 loses a fresh quorum queue's registration on a kill without it
				return err
			}
			return n.Restart()
		}})
	})
	t.Run("activemq", func(t *testing.T) {
		t.Parallel()
		b := activemq.Start(t)
		run(t, restartable{"activemq", "mqtt://" + b.MQTTAddr(), nil, b.Restart})
	})
	t.Run("mochi", func(t *testing.T) {
		t.Parallel()
		b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithDataDir(t.TempDir()))
		run(t, restartable{"mochi", b.URL(), []mqttkeep.Option{mqttkeep.WithProtocolVersion(mqttkeep.MQTT311)}, b.Restart})
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		b := mosquitto.Start(t, mosquitto.WithPersistence())
		run(t, restartable{"mosquitto", b.URL(), []mqttkeep.Option{mqttkeep.WithProtocolVersion(mqttkeep.MQTT311)}, b.Restart})
	})
}
