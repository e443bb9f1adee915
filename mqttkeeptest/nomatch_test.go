package mqttkeeptest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// The broker answers a QoS 1 or 2 message that no subscription matches
// with reason code 0x10 (no matching subscribers), as MQTT 5 allows and
// Mosquitto does, so that Request reports "nobody listens" at once
// instead of waiting for its ctx. Mochi v2.7.9 answered 0x00.
func TestNoMatchingSubscribers(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mqttkeep.New(mqttkeep.WithServer(b.URL()))
	noErr(t, err)
	defer c.Close(context.Background())
	noErr(t, c.Connect(ctx))

	reason := func(topic string, qos mqttkeep.QoS) mqttkeep.ReasonCode {
		t.Helper()
		res, err := c.PublishAsync(ctx, topic, []byte("x"), mqttkeep.WithQoS(qos))
		noErr(t, err)
		noErr(t, res.Wait(ctx)) // 0x10 is a success: Err is nil
		return res.ReasonCode()
	}
	for _, qos := range []mqttkeep.QoS{1, 2} {
		if rc := reason("nobody/listens", qos); rc != 0x10 {
			t.Errorf("QoS %d to a topic nobody subscribed: reason code %#x, want 0x10", qos, rc)
		}
	}

	noErr(t, c.Subscribe(ctx, "somebody/#", 1, func(*mqttkeep.Message) {}))
	for _, qos := range []mqttkeep.QoS{1, 2} {
		if rc := reason("somebody/listens", qos); rc != 0x00 {
			t.Errorf("QoS %d to a subscribed topic: reason code %#x, want 0x00", qos, rc)
		}
	}

	// Request learns from the PUBACK that no responder exists: it returns
	// ErrNoResponders, not ctx's deadline (30 s away).
	_, err = c.Request(ctx, "svc/nobody", []byte("?"))
	if !errors.Is(err, mqttkeep.ErrNoResponders) {
		t.Errorf("Request to a topic nobody subscribed: %v, want ErrNoResponders", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Request waited for its ctx: %v", ctx.Err())
	}
}
