package wsconn_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer upgrades every request, offering subprotocols, and echoes
// the stream; it records each request's path and X-Test header.
type echoServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // "path header"
}

func newEchoServer(t *testing.T, tlsOn bool, subprotocols ...string) *echoServer {
	t.Helper()
	e := &echoServer{}
	up := websocket.Upgrader{Subprotocols: subprotocols}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.requests = append(e.requests, r.URL.Path+" "+r.Header.Get("X-Test"))
		e.mu.Unlock()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := wsconn.New(ws)
		defer c.Close()
		_, _ = io.Copy(c, c)
	})
	e.Server = httptest.NewUnstartedServer(h)
	e.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
	if tlsOn {
		e.StartTLS()
	} else {
		e.Start()
	}
	t.Cleanup(e.Close)
	return e
}

// url is the server's URL with scheme ws or wss and path.
func (e *echoServer) url(t *testing.T, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(e.URL + path)
	require.NoError(t, err)
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	return u
}

func (e *echoServer) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

// trust is a TLS configuration that trusts the test server's certificate.
func trust(e *echoServer) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(e.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echo writes p and reads it back through c.
func echo(t *testing.T, c net.Conn, p string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Write([]byte(p))
	require.NoError(t, err)
	got := make([]byte, len(p))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, p, string(got))
}

// ws:// and wss://: the path ("/" for none), the header, netDial for
// the TCP connection, TLS beneath wss:// with the URL's host as the
// certificate's name.
func TestDial(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tls   bool
		path  string
		wants string
	}{
		{"ws without a path", false, "", "/"},
		{"ws with a path", false, "/mqtt", "/mqtt"},
		{"wss", true, "", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEchoServer(t, tc.tls, "other", wsconn.Subprotocol)
			var dialled []string
			netDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialled = append(dialled, network+" "+addr)
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}
			var cfg *tls.Config
			if tc.tls {
				cfg = trust(e)
			}
			u := e.url(t, tc.path)
			c, err := wsconn.Dial(testCtx(t), u, netDial, cfg, http.Header{"X-Test": {"hello"}})
			require.NoError(t, err)
			defer c.Close()
			echo(t, c, "one")
			echo(t, c, "two")
			assert.Equal(t, []string{tc.wants + " hello"}, e.seen())
			assert.Equal(t, []string{"tcp " + u.Host}, dialled)
			st, isTLS := c.(*wsconn.Conn).TLSConnectionState()
			assert.Equal(t, tc.tls, isTLS)
			if tc.tls {
				assert.True(t, st.HandshakeComplete)
				assert.NotEmpty(t, st.VerifiedChains, "the chain verified for 127.0.0.1")
			}
		})
	}
}

// The handshake's failures, each with its own error.
func TestDialErrors(t *testing.T) {
	t.Parallel()
	plain := newEchoServer(t, false, wsconn.Subprotocol)
	noMQTT := newEchoServer(t, false, "other")
	secure := newEchoServer(t, true, wsconn.Subprotocol)

	_, err := wsconn.Dial(testCtx(t), noMQTT.url(t, ""), nil, nil, nil)
	require.Error(t, err)
	assert.Equal(t, `websocket handshake: server did not accept the "mqtt" subprotocol`, err.Error())

	_, err = wsconn.Dial(testCtx(t), plain.url(t, "/missing"), nil, nil, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, websocket.ErrBadHandshake)
	assert.True(t, strings.HasPrefix(err.Error(), "websocket handshake: 404 Not Found: "), err.Error())

	// The system's roots do not know the test server's certificate.
	_, err = wsconn.Dial(testCtx(t), secure.url(t, ""), nil, nil, nil)
	var unknown *tls.CertificateVerificationError
	assert.ErrorAs(t, err, &unknown)
	// A name the certificate does not carry.
	cfg := trust(secure)
	cfg.ServerName = "mqtt.example"
	_, err = wsconn.Dial(testCtx(t), secure.url(t, ""), nil, cfg, nil)
	var hostname x509.HostnameError
	assert.ErrorAs(t, err, &hostname)

	_, err = wsconn.Dial(testCtx(t), &url.URL{Scheme: "mqtt", Host: "127.0.0.1:1"}, nil, nil, nil)
	assert.ErrorContains(t, err, `unsupported scheme "mqtt"`)
}

// A server that accepts the connection and never answers the upgrade:
// Dial returns when ctx is cancelled, even without a deadline.
func TestDialCancelledDuringUpgrade(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		for c := range accepted {
			_ = c.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := wsconn.Dial(ctx, &url.URL{Scheme: "ws", Host: ln.Addr().String()}, nil, nil, nil)
		done <- err
	}()
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no connection")
	}
	// The upgrade request arrives; nothing answers it.
	require.NoError(t, server.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 1)
	_, err = server.Read(buf)
	require.NoError(t, err)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Dial did not return after its ctx was cancelled")
	}
	_ = server.Close()
}
