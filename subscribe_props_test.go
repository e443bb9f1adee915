package mqttkeep_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// subscribeSeen is one SUBSCRIBE as the server read it.
type subscribeSeen struct {
	filters []string
	user    []packets.User
}

// A subscription's user properties go in a SUBSCRIBE of its own, on the
// first connection and on every restore after the broker lost the
// session. The broker announces no Subscription Identifiers, so the
// client would otherwise batch all three in one SUBSCRIBE.
func TestSubscriptionUserProperties(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		seen := make(chan []subscribeSeen, 2)
		go func() {
			for conn := range 2 { // the first connection, then the reconnect
				sc := srv.accept()
				noIDs := byte(0)
				if sc.handshake(&packets.Properties{SubIDAvailable: &noIDs}) == nil {
					return
				}
				var got []subscribeSeen
				for len(got) < 3 {
					cp := sc.read()
					if cp == nil {
						return
					}
					s, ok := cp.Content.(*packets.Subscribe)
					if !ok {
						continue
					}
					var row subscribeSeen
					for _, o := range s.Subscriptions {
						row.filters = append(row.filters, o.Topic)
					}
					if s.Properties != nil {
						row.user = s.Properties.User
					}
					got = append(got, row)
					sa := packets.NewControlPacket(packets.SUBACK)
					sa.Content.(*packets.Suback).PacketID = s.PacketID
					sa.Content.(*packets.Suback).Reasons = make([]byte, len(s.Subscriptions))
					sc.send(sa)
				}
				seen <- got
				if conn == 0 {
					sc.Close() // the session is lost: the reconnect restores all three
				} else {
					sc.serve(nil) // until the client closes
				}
			}
		}()
		nop := func(*mqttkeep.Message) {}
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 1}}),
			mqttkeep.WithSubscription("plain/a", 1, nop),
			mqttkeep.WithSubscription("tagged/b", 1, nop,
				mqttkeep.WithSubscriptionUserProperty("tenant", "acme"),
				mqttkeep.WithSubscriptionUserProperty("tenant", "beta")),
			mqttkeep.WithSubscription("plain/c", 1, nop))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		want := []subscribeSeen{
			{filters: []string{"plain/a"}},
			{filters: []string{"tagged/b"}, user: []packets.User{{Key: "tenant", Value: "acme"}, {Key: "tenant", Value: "beta"}}},
			{filters: []string{"plain/c"}},
		}
		// Registration order, the tagged subscription alone with its
		// properties in order, on the first connection and on the restore.
		assert.Equal(t, want, <-seen, "first connection")
		assert.Equal(t, want, <-seen, "restored after the session was lost")
		require.NoError(t, c.Close(context.Background()))
	})
}

// A user property MQTT cannot carry is refused before anything is sent.
func TestSubscriptionUserPropertyChecked(t *testing.T) {
	nop := func(*mqttkeep.Message) {}
	for name, kv := range map[string][2]string{
		"invalid UTF-8 name": {"\xff", "v"},
		"NUL in value":       {"k", "a\x00b"},
		"value too long":     {"k", strings.Repeat("v", 65536)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mqttkeep.New(mqttkeep.WithServer("mqtt://127.0.0.1:1"),
				mqttkeep.WithSubscription("t", 0, nop, mqttkeep.WithSubscriptionUserProperty(kv[0], kv[1])))
			require.Error(t, err)
			assert.True(t, errors.Is(err, mqttkeep.ErrInvalidOption), "New: %v", err)
		})
	}
}
