package mqttkeep_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A broker's AUTH during enhanced authentication must carry the method
// the CONNECT (or the re-authentication) chose ([MQTT-4.12.0-5],
// §3.15.2.2.2): an AUTH 0x18 without one, or with another, ends the
// exchange with DISCONNECT 0x82 instead of being answered.
func TestAuthMethodMissingOrChangedIsAProtocolError(t *testing.T) {
	for _, tc := range []struct{ name, method string }{
		{"missing", ""},
		{"changed", "SCRAM-SHA-1"},
	} {
		t.Run("connect/"+tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScripted(t)
				defer srv.close()
				answer := make(chan *packets.ControlPacket, 1)
				go func() {
					sc := srv.accept()
					sc.read() // CONNECT
					ch := newAuth()
					ch.Content.(*packets.Auth).ReasonCode = 0x18
					ch.Content.(*packets.Auth).Properties = &packets.Properties{AuthMethod: tc.method, AuthData: []byte("nonce")}
					sc.send(ch)
					answer <- sc.read()
					sc.serve(nil)
				}()
				c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
					mqttkeep.WithAuthenticator(&challengeAuth{secret: []byte("s")}),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err = c.Connect(ctx)
				assert.ErrorIs(t, err, mqttkeep.ErrProtocolViolation)
				cp := <-answer
				require.NotNil(t, cp, "the client answers with DISCONNECT before closing")
				require.Equal(t, byte(packets.DISCONNECT), cp.Type, "not an AUTH answering the bad challenge")
				assert.Equal(t, byte(0x82), cp.Content.(*packets.Disconnect).ReasonCode)
				require.NoError(t, c.Close(context.Background()))
			})
		})
		t.Run("reauthenticate/"+tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				secret := []byte("s")
				srv := newScripted(t)
				defer srv.close()
				answer := make(chan *packets.ControlPacket, 1)
				go func() {
					sc := srv.accept()
					sc.read()
					if !serveChallenge(t, sc, secret, "n1", false) {
						return
					}
					sc.read() // AUTH 0x19
					ch := newAuth()
					ch.Content.(*packets.Auth).ReasonCode = 0x18
					ch.Content.(*packets.Auth).Properties = &packets.Properties{AuthMethod: tc.method, AuthData: []byte("n2")}
					sc.send(ch)
					answer <- sc.read()
					sc.serve(nil)
				}()
				c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
					mqttkeep.WithAuthenticator(&challengeAuth{secret: secret}),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))
				require.NoError(t, err)
				require.NoError(t, c.Connect(context.Background()))
				assert.Error(t, c.Reauthenticate(context.Background()))
				cp := <-answer
				require.NotNil(t, cp)
				require.Equal(t, byte(packets.DISCONNECT), cp.Type, "not an AUTH answering the bad challenge")
				assert.Equal(t, byte(0x82), cp.Content.(*packets.Disconnect).ReasonCode)
				require.NoError(t, c.Close(context.Background()))
			})
		})
	}
}

// A server may not send Session Expiry Interval in its DISCONNECT
// ([MQTT-3.14.2-2] covers the client; §3.14.2.2.2: "the Server MUST NOT
// send a Session Expiry Interval in the DISCONNECT"): the client treats it
// as a protocol error, not as a normal disconnect.
func TestServerDisconnectWithSessionExpiryIsAProtocolError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		answer := make(chan *packets.ControlPacket, 1)
		go func() {
			sc := srv.accept()
			sc.handshake(nil)
			d := packets.NewControlPacket(packets.DISCONNECT)
			expiry := uint32(60)
			d.Content.(*packets.Disconnect).ReasonCode = 0x8B // server shutting down
			d.Content.(*packets.Disconnect).Properties = &packets.Properties{SessionExpiryInterval: &expiry}
			sc.send(d)
			answer <- sc.read()
			sc.serve(nil)
		}()
		ev := newEvents()
		c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		cp := <-answer
		require.NotNil(t, cp)
		require.Equal(t, byte(packets.DISCONNECT), cp.Type)
		assert.Equal(t, byte(0x82), cp.Content.(*packets.Disconnect).ReasonCode)
		assert.ErrorIs(t, ev.disconnectEvent(t, 0).Err, mqttkeep.ErrProtocolViolation)
		require.NoError(t, c.Close(context.Background()))
	})
}
