package mqttkeep_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPKI is a CA and a server certificate for 127.0.0.1, made per test
// run.
type testPKI struct {
	server *tls.Config // for the broker
	roots  *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqttkeep test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return &testPKI{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}},
		roots:  roots,
	}
}

// transports lists every transport with the broker options and client
// options it needs.
func transports(t *testing.T) []struct {
	name   string
	broker []mqttkeeptest.BrokerOption
	client []mqttkeep.Option
} {
	pki := newTestPKI(t)
	trust := mqttkeep.WithTLSConfig(&tls.Config{RootCAs: pki.roots})
	return []struct {
		name   string
		broker []mqttkeeptest.BrokerOption
		client []mqttkeep.Option
	}{
		{"tcp", nil, nil},
		{"tls", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server)}, []mqttkeep.Option{trust}},
		{"ws", []mqttkeeptest.BrokerOption{mqttkeeptest.WithWebSocket()}, nil},
		{"wss", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server), mqttkeeptest.WithWebSocket()}, []mqttkeep.Option{trust}},
	}
}

// Every transport carries the same guarantees: round trip, Ping, dead-link
// detection within K/2 + ping timeout, reconnect with restored
// subscriptions after a broker restart.
func TestTransportsBehaveTheSame(t *testing.T) {
	const k = 2 * time.Second
	for _, tr := range transports(t) {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			b := mqttkeeptest.NewBroker(t, tr.broker...)
			scheme, rest, _ := strings.Cut(b.URL(), "://")
			require.True(t, strings.HasPrefix(scheme, map[string]string{"tcp": "mqtt", "tls": "mqtts", "ws": "ws", "wss": "wss"}[tr.name]))
			_, path, _ := strings.Cut(rest, "/")
			// The client goes through the fault proxy; TLS and WebSocket
			// bytes pass through it like any others.
			p := mqttkeeptest.NewProxy(t, b.Addr())
			url := scheme + "://" + p.Addr()
			if path != "" {
				url += "/" + path
			}
			ev := newEvents()
			c := newClient(t, append(append(ev.options(), tr.client...), mqttkeep.WithServer(url),
				mqttkeep.WithKeepAlive(k), mqttkeep.WithClientID("tr-"+tr.name),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 20 * time.Millisecond }}))...)
			connect(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			got := newCollector()
			require.NoError(t, c.Subscribe(ctx, "tr/#", 1, got.handle))
			require.NoError(t, c.Publish(ctx, "tr/1", []byte("one"), mqttkeep.WithQoS(1)))
			assert.Equal(t, "one", string(got.wait(t, 1, 5*time.Second)[0].Payload))
			rtt, err := c.Ping(ctx)
			require.NoError(t, err)
			assert.Positive(t, rtt)

			// Silent link death.
			p.Blackhole()
			diedAt := time.Now()
			e := <-ev.lost
			require.ErrorIs(t, e.Err, mqttkeep.ErrPingTimeout)
			assert.LessOrEqual(t, time.Since(diedAt), k+tcpSlack)
			p.Pass()
			require.NoError(t, c.AwaitConnected(ctx))

			// Broker restart: the session is gone, the subscription is not.
			b.Stop()
			<-ev.lost
			require.NoError(t, b.Restart())
			require.NoError(t, c.AwaitConnected(ctx)) // the loss was reported: not connected until the reconnect
			assert.EqualValues(t, 3, c.Stats().Connects)
			require.NoError(t, c.Publish(ctx, "tr/2", []byte("two"), mqttkeep.WithQoS(1)))
			got.waitPayload(t, "two", 5*time.Second)
		})
	}
}

// A server certificate that does not verify ends the client with a clear,
// final error after one attempt: retrying cannot fix it.
func TestTLSVerificationFailureIsFinal(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name   string
		broker []mqttkeeptest.BrokerOption
		tls    *tls.Config
	}{
		{"unknown CA over TLS", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server)}, nil},
		{"unknown CA over WSS", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server), mqttkeeptest.WithWebSocket()}, nil},
		{"wrong host name", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server)}, &tls.Config{RootCAs: pki.roots, ServerName: "broker.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t, tc.broker...)
			p := mqttkeeptest.NewProxy(t, b.Addr())
			scheme, rest, _ := strings.Cut(b.URL(), "://")
			_, path, _ := strings.Cut(rest, "/")
			ev := newEvents()
			c := newClient(t, append(ev.options(), mqttkeep.WithServer(scheme+"://"+p.Addr()+"/"+path),
				mqttkeep.WithTLSConfig(tc.tls),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Millisecond }}))...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := c.Connect(ctx)
			require.Error(t, err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "final at once, not retried until the deadline")
			var cv *tls.CertificateVerificationError
			require.ErrorAs(t, err, &cv, "the verification error is reachable with errors.As")
			assert.Contains(t, err.Error(), "certificate")
			assert.Equal(t, mqttkeep.StateStopped, c.State())
			assert.Equal(t, 1, p.Connections(), "one attempt, no retry storm")
			require.NoError(t, c.Close(ctx))
			_, disconnects := ev.counts()
			assert.Equal(t, 1, disconnects, "reported once")
		})
	}
}

// With the built-in dialer only the TCP connection is overlapped when it
// is slow: a TLS or WebSocket handshake with a host that answered runs
// once, however long it takes. Here every byte takes 400 ms each way, so
// the handshakes take well over the 500 ms after which a slow dial is
// overlapped; one TCP connection per transport all the same.
func TestSlowHandshakeIsNotOverlapped(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name   string
		broker []mqttkeeptest.BrokerOption
	}{
		{"TLS", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server)}},
		{"WSS", []mqttkeeptest.BrokerOption{mqttkeeptest.WithTLS(pki.server), mqttkeeptest.WithWebSocket()}},
		{"WS", []mqttkeeptest.BrokerOption{mqttkeeptest.WithWebSocket()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := mqttkeeptest.NewBroker(t, tc.broker...)
			p := mqttkeeptest.NewProxy(t, b.Addr())
			p.Delay(400 * time.Millisecond)
			scheme, rest, _ := strings.Cut(b.URL(), "://")
			_, path, _ := strings.Cut(rest, "/")
			c := newClient(t, mqttkeep.WithServer(scheme+"://"+p.Addr()+"/"+path),
				mqttkeep.WithTLSConfig(&tls.Config{RootCAs: pki.roots}), mqttkeep.WithConnectTimeout(20*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			require.NoError(t, c.Connect(ctx))
			t.Logf("%s connected in %v", tc.name, time.Since(start).Round(time.Millisecond))
			assert.Equal(t, 1, p.Connections(), "one TCP connection: the handshake was not overlapped")
		})
	}
}
