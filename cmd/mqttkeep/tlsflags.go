package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// tlsFlags are mosquitto's TLS flags.
type tlsFlags struct {
	cafile, capath string
	cert, key      string
	version        string
	alpn           string
	insecure       bool
	osCerts        bool
}

func (t *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cafile, "cafile", "", "PEM file of trusted CA certificates")
	fs.StringVar(&t.capath, "capath", "", "directory of PEM CA certificates")
	fs.StringVar(&t.cert, "cert", "", "client certificate (PEM)")
	fs.StringVar(&t.key, "key", "", "client private key (PEM)")
	fs.StringVar(&t.version, "tls-version", "", "tlsv1.3, tlsv1.2 or tlsv1.1")
	fs.StringVar(&t.alpn, "tls-alpn", "", "ALPN protocol")
	fs.BoolVar(&t.insecure, "insecure", false, "do not check the server's host name")
	fs.BoolVar(&t.osCerts, "tls-use-os-certs", false, "trust the system's CA certificates")
	unsupported(fs, "Go's TLS chooses among its own secure cipher suites (and TLS 1.3's are not configurable)", false, "ciphers")
	unsupported(fs, "TLS-PSK: Go's crypto/tls has no pre-shared-key cipher suites", false, "psk", "psk-identity")
	unsupported(fs, "OpenSSL engines do not exist in Go's crypto/tls", false, "tls-engine", "keyform", "tls-engine-kpass-sha1")
}

// enables reports whether these flags alone turn TLS on, as with mosquitto:
// a CA file or directory, or the system's CAs.
func (t *tlsFlags) enables() bool { return t.cafile != "" || t.capath != "" || t.osCerts }

// anyGiven reports whether a flag that only makes sense with TLS was given.
func (t *tlsFlags) anyGiven() bool {
	return t.enables() || t.cert != "" || t.key != "" || t.version != "" || t.alpn != "" || t.insecure
}

// config builds the TLS configuration. serverName is the host name the
// certificate must carry (unless --insecure). Errors are usage errors that
// name the flag and the file.
func (t *tlsFlags) config(serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	switch t.version {
	case "":
	case "tlsv1.3":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	case "tlsv1.2":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	case "tlsv1.1":
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	default:
		return nil, usagef("--tls-version %q: want tlsv1.3, tlsv1.2 or tlsv1.1", t.version)
	}
	if (t.cert == "") != (t.key == "") {
		return nil, usagef("--cert and --key go together: give both or neither")
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, usagef("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.alpn != "" {
		cfg.NextProtos = []string{t.alpn}
	}
	if t.cafile != "" || t.capath != "" {
		pool := x509.NewCertPool()
		if t.osCerts {
			sys, err := x509.SystemCertPool()
			if err != nil {
				return nil, usagef("--tls-use-os-certs: %v", err)
			}
			pool = sys
		}
		if t.cafile != "" {
			if err := addPEMFile(pool, t.cafile); err != nil {
				return nil, usagef("--cafile: %v", err)
			}
		}
		if t.capath != "" {
			if err := addPEMDir(pool, t.capath); err != nil {
				return nil, usagef("--capath: %v", err)
			}
		}
		cfg.RootCAs = pool
	}
	if t.insecure {
		// mosquitto's --insecure skips the host name check only: the chain
		// must still lead to a trusted CA.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			if err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
			}
			return nil
		}
	}
	return cfg, nil
}

// addPEMFile adds every certificate of a PEM file to pool.
func addPEMFile(pool *x509.CertPool, name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("%s: no PEM certificate in it", name)
	}
	return nil
}

// addPEMDir adds the certificates of every PEM file in dir (mosquitto's
// --capath wants "openssl rehash" names; any file with a certificate is
// taken here).
func addPEMDir(pool *x509.CertPool, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if strings.Contains(string(data), "-----BEGIN CERTIFICATE-----") && pool.AppendCertsFromPEM(data) {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM certificate in any file", dir)
	}
	return nil
}

// tlsVersionName names a TLS version as mosquitto's flag does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS 1.3"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS10:
		return "TLS 1.0"
	}
	return fmt.Sprintf("TLS 0x%04x", v)
}
