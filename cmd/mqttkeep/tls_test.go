package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sub and pub over TLS with mosquitto's flags: --cafile, --capath, TLS
// turned on by a CA alone (-h/-p), --insecure for a certificate that does
// not name the host, and a failure when the chain does not verify.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithTLS(pki.serverConfig(false)))
	_, port, _ := net.SplitHostPort(b.Addr())
	capath := filepath.Join(t.TempDir(), "cas")
	require.NoError(t, os.Mkdir(capath, 0o700))
	data, err := os.ReadFile(pki.caFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(capath, "test-ca.crt"), data, 0o600))

	sub := startSub(t, "-L", b.URL(), "-t", "tls/#", "--cafile", pki.caFile, "-q", "1", "-C", "4", "-v")
	for _, args := range [][]string{
		{"-L", b.URL(), "--cafile", pki.caFile, "-t", "tls/a"},                               // mqtts:// URL
		{"-h", "127.0.0.1", "-p", port, "--capath", capath, "-t", "tls/b"},                   // a CA turns TLS on
		{"-h", "localhost", "-p", port, "--cafile", pki.caFile, "--insecure", "-t", "tls/c"}, // the name is not checked
		{"-L", b.URL(), "--cafile", pki.caFile, "--tls-use-os-certs", "-t", "tls/d"},         // the system's CAs and ours
	} {
		code, _, stderr := runSync(t, nil, append([]string{"pub", "-q", "1", "-m", "x"}, args...)...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
	}
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	assert.Equal(t, []string{"tls/a x", "tls/b x", "tls/c x", "tls/d x"}, sub.stdout.lines())

	for name, args := range map[string][]string{
		"unknown CA":    {"-L", b.URL()},
		"host mismatch": {"-h", "localhost", "-p", port, "--cafile", pki.caFile},
		"not TLS 1.1":   {"-L", b.URL(), "--cafile", pki.caFile, "--tls-version", "tlsv1.1"},
	} {
		code, _, stderr := runSync(t, nil, append([]string{"pub", "-t", "tls/x", "-m", "x"}, args...)...)
		assert.Equal(t, exitFail, code, "%s: %s", name, stderr)
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "%s: one line: %s", name, stderr)
	}
	// sub gives up too: a certificate that does not verify cannot get
	// better by retrying.
	code, _, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "x")
	assert.Equal(t, exitFail, code, stderr)
	assert.Contains(t, stderr, "certificate signed by unknown authority")
}

// A broker that wants a client certificate gets --cert/--key; without
// them pub cannot connect.
func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithTLS(pki.serverConfig(true)))
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "--cafile", pki.caFile, "-t", "m", "-m", "x", "-q", "1",
		"--cert", pki.clientCert, "--key", pki.clientKey)
	require.Equal(t, exitOK, code, stderr)
	code, _, stderr = runSync(t, nil, "pub", "-L", b.URL(), "--cafile", pki.caFile, "-t", "m", "-m", "x", "-q", "1")
	assert.Equal(t, exitFail, code, stderr)
	assert.Contains(t, stderr, "certificate")
}

// check reads the TLS handshake: version (--tls-version), cipher suite,
// ALPN (--tls-alpn), and the chain; over WebSocket too.
func TestCheckTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithTLS(pki.serverConfig(false)))
	ws := mqttkeeptest.NewBroker(t, mqttkeeptest.WithTLS(pki.serverConfig(false)), mqttkeeptest.WithWebSocket())
	for _, tc := range []struct {
		url, version, alpn string
	}{
		{b.URL(), "tlsv1.2", "mqtt"},
		{b.URL(), "tlsv1.3", ""},
		{ws.URL(), "tlsv1.3", ""},
	} {
		args := []string{"check", "-L", tc.url, "--cafile", pki.caFile, "--json", "--pings", "2", "--tls-version", tc.version}
		if tc.alpn != "" {
			args = append(args, "--tls-alpn", tc.alpn)
		}
		code, stdout, stderr := runSync(t, nil, args...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
		var r checkReport
		require.NoError(t, json.Unmarshal([]byte(stdout), &r), stdout)
		require.NotNil(t, r.TLS, stdout)
		assert.Equal(t, map[string]string{"tlsv1.2": "TLS 1.2", "tlsv1.3": "TLS 1.3"}[tc.version], r.TLS.Version)
		assert.NotEmpty(t, r.TLS.CipherSuite)
		assert.Equal(t, tc.alpn, r.TLS.ALPN)
		assert.Equal(t, "127.0.0.1", r.TLS.ServerName)
		require.Len(t, r.TLS.Certificates, 2)
		assert.Equal(t, "CN=mqttkeep test broker", r.TLS.Certificates[0].Subject)
		assert.Equal(t, "CN=mqttkeep test CA", r.TLS.Certificates[0].Issuer)
		assert.Equal(t, []string{"127.0.0.1"}, r.TLS.Certificates[0].IPs)
		assert.True(t, r.TLS.Certificates[0].NotAfter.After(time.Now()))
		require.NotNil(t, r.RTT)
		assert.Equal(t, 2, r.RTT.Count)
	}
	code, stdout, stderr := runSync(t, nil, "check", "-L", b.URL(), "--cafile", pki.caFile)
	require.Equal(t, exitOK, code, stderr)
	for _, want := range []string{"TLS   ", "certificate 0", "subject CN=mqttkeep test broker; issuer CN=mqttkeep test CA", "expires in 23 hours", "for 127.0.0.1"} {
		assert.Contains(t, stdout, want)
	}
}

// -A binds the local address; --unix dials a unix socket.
func TestBindAndUnix(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	tp := newTap(t, b.Addr())
	code, _, stderr := runSync(t, nil, "pub", "-L", tp.url(), "-A", "127.0.0.2", "-t", "a", "-m", "x", "-q", "1")
	require.Equal(t, exitOK, code, stderr)
	tp.mu.Lock()
	require.Len(t, tp.remote, 1)
	assert.Equal(t, "127.0.0.2", tp.remote[0].(*net.TCPAddr).IP.String())
	tp.mu.Unlock()

	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	ux := newTapOn(t, "unix", sock, b.Addr())
	sub := startSub(t, "--unix", sock, "-t", "ux", "-q", "1", "-C", "1", "-v")
	code, _, stderr = runSync(t, nil, "pub", "--unix", sock, "-t", "ux", "-m", "via the socket", "-q", "1")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second))
	assert.Equal(t, "ux via the socket\n", sub.stdout.String())
	ux.mu.Lock()
	assert.Len(t, ux.sent, 2, "both came through the socket")
	ux.mu.Unlock()
}
