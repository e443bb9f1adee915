package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/require"
)

// tap is a TCP relay between the command and a real broker that keeps a
// copy of every byte the command sent, so that a test can decode the
// packets (with paho's codec, the reference) and check what went on the
// wire. It only observes: the broker answers.
type tap struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	sent   [][]byte // per accepted connection, what the client sent
	remote []net.Addr
	wg     sync.WaitGroup
	conns  []net.Conn
}

func newTap(t *testing.T, target string) *tap {
	t.Helper()
	return newTapOn(t, "tcp", "127.0.0.1:0", target)
}

// newTapOn listens on network and address ("unix" and a socket path).
func newTapOn(t *testing.T, network, addr, target string) *tap {
	t.Helper()
	ln, err := net.Listen(network, addr)
	require.NoError(t, err)
	tp := &tap{ln: ln, target: target}
	tp.wg.Add(1)
	go tp.accept()
	t.Cleanup(tp.close)
	return tp
}

func (tp *tap) url() string { return "mqtt://" + tp.ln.Addr().String() }

func (tp *tap) accept() {
	defer tp.wg.Done()
	for {
		c, err := tp.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", tp.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		tp.mu.Lock()
		idx := len(tp.sent)
		tp.sent = append(tp.sent, nil)
		tp.remote = append(tp.remote, c.RemoteAddr())
		tp.conns = append(tp.conns, c, up)
		tp.mu.Unlock()
		tp.wg.Add(2)
		go func() {
			defer tp.wg.Done()
			defer up.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					tp.mu.Lock()
					tp.sent[idx] = append(tp.sent[idx], buf[:n]...)
					tp.mu.Unlock()
					if _, werr := up.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer tp.wg.Done()
			defer c.Close()
			_, _ = io.Copy(c, up)
		}()
	}
}

func (tp *tap) close() {
	_ = tp.ln.Close()
	tp.mu.Lock()
	for _, c := range tp.conns {
		_ = c.Close()
	}
	tp.mu.Unlock()
	tp.wg.Wait()
}

// packets decodes what the client sent on its connection number conn
// (0 for the first), in order.
func (tp *tap) packets(t *testing.T, conn int) []*packets.ControlPacket {
	t.Helper()
	tp.mu.Lock()
	require.Greater(t, len(tp.sent), conn, "connection %d never came", conn)
	data := append([]byte(nil), tp.sent[conn]...)
	tp.mu.Unlock()
	var out []*packets.ControlPacket
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		p, err := packets.ReadPacket(r)
		if err != nil {
			break // a packet cut off at the end
		}
		out = append(out, p)
	}
	return out
}

// first returns the first packet of type typ the client sent on conn.
func (tp *tap) first(t *testing.T, conn int, typ byte) *packets.ControlPacket {
	t.Helper()
	for _, p := range tp.packets(t, conn) {
		if p.FixedHeader.Type == typ {
			return p
		}
	}
	t.Fatalf("no packet of type %d on connection %d", typ, conn)
	return nil
}

// testPKI is a CA and a server certificate for 127.0.0.1 and localhost,
// and a client certificate, written as PEM files.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert            tls.Certificate
	clientCert, clientKey string
	pool                  *x509.CertPool
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mqttkeep test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leaf := func(name string, usage x509.ExtKeyUsage, serial int64, ips []net.IP, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	pemFile := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		return b
	}
	pk := &testPKI{dir: dir, pool: x509.NewCertPool()}
	pk.pool.AddCert(ca)
	pk.caFile = pemFile("ca.pem", "CERTIFICATE", caDER)
	// The server certificate names 127.0.0.1 only, not "localhost": a
	// client that dials localhost needs --insecure.
	sDER, sKey := leaf("mqttkeep test broker", x509.ExtKeyUsageServerAuth, 2, []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	pk.serverCert = tls.Certificate{Certificate: [][]byte{sDER, caDER}, PrivateKey: sKey}
	cDER, cKey := leaf("mqttkeep test client", x509.ExtKeyUsageClientAuth, 3, nil, nil)
	pk.clientCert = pemFile("client.pem", "CERTIFICATE", cDER)
	pk.clientKey = pemFile("client-key.pem", "EC PRIVATE KEY", keyDER(cKey))
	return pk
}

// serverConfig is the broker's TLS configuration; mutual makes it demand
// a client certificate from the CA.
func (pk *testPKI) serverConfig(mutual bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{pk.serverCert}, NextProtos: []string{"mqtt"}}
	if mutual {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pk.pool
	}
	return cfg
}
