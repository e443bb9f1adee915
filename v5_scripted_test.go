package mqttkeep_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/gorilla/websocket"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// challengeAuth is a challenge-response Authenticator in the manner of
// SCRAM: the server sends a nonce, the client answers HMAC(secret,
// nonce), the server proves it knows the secret too with HMAC(secret,
// answer) in its success.
type challengeAuth struct {
	secret []byte
	mu     sync.Mutex
	last   []byte // the client's last answer
}

func mac(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

func (a *challengeAuth) Start(context.Context) (string, []byte, error) {
	return "HMAC-CHALLENGE", []byte("client-first"), nil
}

func (a *challengeAuth) Continue(_ context.Context, challenge []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last = mac(a.secret, challenge)
	return a.last, nil
}

func (a *challengeAuth) Done(_ context.Context, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !hmac.Equal(data, mac(a.secret, a.last)) {
		return fmt.Errorf("the server did not prove it knows the secret")
	}
	return nil
}

// newAuth returns an AUTH packet. paho.golang v0.23.0's NewControlPacket
// gives AUTH the fixed-header flags 0001, which MQTT reserves as 0000
// ([MQTT-2.1.3-1]); a client must treat that as malformed.
func newAuth() *packets.ControlPacket {
	cp := packets.NewControlPacket(packets.AUTH)
	cp.Flags = 0
	return cp
}

// serveChallenge plays the server side of challengeAuth on sc, for the
// CONNECT exchange (first) or a re-authentication; it reports success.
func serveChallenge(t *testing.T, sc *scriptConn, secret []byte, nonce string, reauth bool) bool {
	return serveChallengeAs(t, sc, secret, nonce, reauth, true)
}

// serveChallengeAs is serveChallenge; without check, the server accepts
// any answer (an impostor that does not know the secret).
func serveChallengeAs(t *testing.T, sc *scriptConn, secret []byte, nonce string, reauth, check bool) bool {
	ch := newAuth()
	ch.Content.(*packets.Auth).ReasonCode = 0x18
	ch.Content.(*packets.Auth).Properties = &packets.Properties{AuthMethod: "HMAC-CHALLENGE", AuthData: []byte(nonce)}
	sc.send(ch)
	cp := sc.read()
	if cp == nil || cp.Type != packets.AUTH {
		t.Errorf("want AUTH, got %v", cp)
		return false
	}
	answer := cp.Content.(*packets.Auth).Properties.AuthData
	if check && !hmac.Equal(answer, mac(secret, []byte(nonce))) {
		return false
	}
	proof := mac(secret, answer)
	if reauth {
		ok := newAuth()
		ok.Content.(*packets.Auth).ReasonCode = 0x00
		ok.Content.(*packets.Auth).Properties = &packets.Properties{AuthMethod: "HMAC-CHALLENGE", AuthData: proof}
		sc.send(ok)
		return true
	}
	ca := packets.NewControlPacket(packets.CONNACK)
	ca.Content.(*packets.Connack).Properties = &packets.Properties{AuthMethod: "HMAC-CHALLENGE", AuthData: proof}
	sc.send(ca)
	return true
}

// Enhanced authentication: a challenge-response on CONNECT and a
// re-authentication on the live connection; a server that fails to prove
// itself fails the attempt.
func TestEnhancedAuthentication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		secret := []byte("shared secret")
		srv := newScripted(t)
		defer srv.close()
		reauthed := make(chan bool, 1)
		go func() {
			sc := srv.accept()
			cp := sc.read()
			c := cp.Content.(*packets.Connect)
			if c.Properties.AuthMethod != "HMAC-CHALLENGE" || string(c.Properties.AuthData) != "client-first" {
				t.Errorf("CONNECT auth: %q %q", c.Properties.AuthMethod, c.Properties.AuthData)
			}
			if !serveChallenge(t, sc, secret, "nonce-1", false) {
				return
			}
			cp = sc.read() // AUTH 0x19: re-authenticate
			if cp == nil || cp.Type != packets.AUTH || cp.Content.(*packets.Auth).ReasonCode != 0x19 {
				t.Errorf("want AUTH 0x19, got %v", cp)
				return
			}
			reauthed <- serveChallenge(t, sc, secret, "nonce-2", true)
			sc.serve(nil)
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithAuthenticator(&challengeAuth{secret: secret}))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		require.NoError(t, c.Reauthenticate(context.Background()))
		assert.True(t, <-reauthed)
		require.NoError(t, c.Close(context.Background()))

		// A server that answers with the wrong proof is not trusted.
		go func() {
			sc := srv.accept()
			sc.read()
			serveChallengeAs(t, sc, []byte("another secret"), "nonce-3", false, false)
			sc.serve(nil)
		}()
		ev := newEvents()
		bad, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithAuthenticator(&challengeAuth{secret: secret}),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = bad.Connect(ctx)
		assert.ErrorIs(t, err, mqttkeep.ErrAuthFailed)
		require.NoError(t, bad.Close(context.Background()))
	})
}

// Credentials computed per attempt: each CONNECT carries the token of its
// attempt; the passwords never reach the log.
func TestCredentialsPerAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var mu sync.Mutex
		var seen []string
		go func() {
			for range 3 {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-srv.stop:
					return
				}
				c := sc.handshake(nil)
				mu.Lock()
				seen = append(seen, c.Username+":"+string(c.Password))
				mu.Unlock()
				_ = sc.Close() // the token expired: a new connection
			}
		}()
		var logs bytes.Buffer
		var lmu sync.Mutex
		n := 0
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 100 * time.Millisecond }}),
			mqttkeep.WithCredentialsFunc(func(context.Context, *url.URL) (mqttkeep.Credentials, error) {
				n++
				return mqttkeep.Credentials{Username: "device", Password: fmt.Sprintf("token-secret-%d", n)}, nil
			}))
		require.NoError(t, err)
		start, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		_ = c.Connect(start)
		cancel()
		time.Sleep(2 * time.Second)
		require.NoError(t, c.Close(context.Background()))
		mu.Lock()
		defer mu.Unlock()
		require.GreaterOrEqual(t, len(seen), 3)
		assert.Equal(t, []string{"device:token-secret-1", "device:token-secret-2", "device:token-secret-3"}, seen[:3])
		lmu.Lock()
		defer lmu.Unlock()
		assert.NotContains(t, logs.String(), "token-secret")
	})
}

// A presigned WebSocket URL and an Authorization header from the
// credentials function reach the handshake; the URL's signature (its
// query) never shows in errors or logs.
func TestCredentialsWebSocketURLAndHeader(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	const sig = "sig=very-secret-signature"
	upgrader := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	var mu sync.Mutex
	var auths []string
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization")+" "+r.URL.RawQuery)
		mu.Unlock()
		if r.URL.RawQuery != sig {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		nc := wsconn.New(ws)
		up, err := net.Dial("tcp", b.Addr())
		if err != nil {
			_ = nc.Close()
			return
		}
		wg.Add(2)
		relay := func(dst, src net.Conn) {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						err = werr
					}
				}
				if err != nil {
					_ = src.Close()
					_ = dst.Close()
					return
				}
			}
		}
		go relay(up, nc)
		go relay(nc, up)
	}))
	t.Cleanup(func() { hs.Close(); wg.Wait() }) // after the clients' cleanups (last in, first out)
	wsURL := strings.Replace(hs.URL, "http://", "ws://", 1) + "/mqtt"
	var logs bytes.Buffer
	var lmu sync.Mutex
	sigOK := true
	c := newClient(t, mqttkeep.WithServer("ws://placeholder.invalid/mqtt"),
		mqttkeep.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		mqttkeep.WithCredentialsFunc(func(context.Context, *url.URL) (mqttkeep.Credentials, error) {
			q := sig
			if !sigOK {
				q = "sig=wrong-secret-signature"
			}
			u, _ := url.Parse(wsURL + "?" + q)
			return mqttkeep.Credentials{URL: u, Header: http.Header{"Authorization": {"Bearer tok"}}}, nil
		}))
	connect(t, c)
	mu.Lock()
	assert.Equal(t, []string{"Bearer tok " + sig}, auths)
	mu.Unlock()

	// A refused handshake: the error names the URL without its query.
	sigOK = false
	bad := newClient(t, mqttkeep.WithServer("ws://placeholder.invalid/mqtt"),
		mqttkeep.WithLogger(slog.New(slog.NewTextHandler(lockedWriter{&lmu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		mqttkeep.WithCredentialsFunc(func(context.Context, *url.URL) (mqttkeep.Credentials, error) {
			u, _ := url.Parse(wsURL + "?sig=wrong-secret-signature")
			return mqttkeep.Credentials{URL: u}, nil
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := bad.Connect(ctx)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-signature")
	assert.Contains(t, err.Error(), "403")
	lmu.Lock()
	defer lmu.Unlock()
	assert.NotContains(t, logs.String(), "secret-signature")
}

// The advanced packet hooks: user properties in CONNECT, a reason string
// and user properties in DISCONNECT.
func TestPacketHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		got := make(chan [2]*packets.ControlPacket, 1)
		go func() {
			sc := srv.accept()
			cp := sc.read()
			ca := packets.NewControlPacket(packets.CONNACK)
			ca.Content.(*packets.Connack).Properties = &packets.Properties{}
			sc.send(ca)
			var dc *packets.ControlPacket
			sc.serve(func(p *packets.ControlPacket) {
				if p.Type == packets.DISCONNECT {
					dc = p
				}
			})
			got <- [2]*packets.ControlPacket{cp, dc}
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithConnectPacket(func(p *mqttkeep.ConnectPacket) {
				assert.Equal(t, "mqtt://pipe:1883", p.Server)
				p.UserProperties = append(p.UserProperties, mqttkeep.UserProperty{Key: "model", Value: "v2"})
			}),
			mqttkeep.WithDisconnectPacket(func(p *mqttkeep.DisconnectPacket) {
				p.ReasonString = "maintenance"
				p.UserProperties = []mqttkeep.UserProperty{{Key: "back", Value: "soon"}}
			}))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		require.NoError(t, c.Close(context.Background()))
		pk := <-got
		conn := pk[0].Content.(*packets.Connect)
		assert.Equal(t, []packets.User{{Key: "model", Value: "v2"}}, conn.Properties.User)
		require.NotNil(t, pk[1], "a DISCONNECT")
		d := pk[1].Content.(*packets.Disconnect)
		assert.Equal(t, "maintenance", d.Properties.ReasonString)
		assert.Equal(t, []packets.User{{Key: "back", Value: "soon"}}, d.Properties.User)
		require.NotNil(t, d.Properties.SessionExpiryInterval, "Close still ends the session")
		assert.Zero(t, *d.Properties.SessionExpiryInterval)
	})
}
