package mqttkeep

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"github.com/mqttkeep/mqttkeep/internal/redact"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Defaults used when an option is not given, each named after its option
// (the limits: see the guide's "Buffer limits").
const (
	DefaultKeepAlive        = 30 * time.Second // WithKeepAlive
	DefaultConnectTimeout   = 10 * time.Second // WithConnectTimeout
	DefaultSessionExpiry    = 5 * time.Minute  // WithSessionExpiry
	DefaultReceiveMaximum   = 128              // WithReceiveMaximum
	DefaultMessageBuffer    = 8192             // WithMessageBuffer
	DefaultMaxFailedResumes = 3                // ReconnectPolicy.MaxFailedResumes
)

// maxKeepAlive is the largest keep alive MQTT can carry: 65,535 seconds.
const maxKeepAlive = math.MaxUint16 * time.Second

// An Option configures a [Client] in [New]; later options override earlier
// ones.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// DialFunc opens the connection to server (of [WithServer], or a Server
// Reference), returning soon after ctx ends and closing what it made.
type DialFunc func(ctx context.Context, server *url.URL) (net.Conn, error)

// config holds every setting of a Client; it is filled by options and
// validated once, in New.
type config struct {
	servers          []*url.URL
	clientID         string
	clientIDSet      bool // WithClientID was given (an empty one: the broker assigns)
	keepAlive        time.Duration
	pingTimeout      time.Duration // 0: keep alive / 2
	connectTimeout   time.Duration
	username         string
	password         secret
	will             *willConfig
	sessionExpiry    time.Duration
	sessionExpirySet bool
	cleanStart       bool
	logger           *slog.Logger
	logClientID      *atomic.Pointer[string] // the client ID the logger adds to every record
	// Hooks registered from New on (test builds only: export_test.go).
	onConnect      []func(ConnectEvent)
	onDisconnect   []func(DisconnectEvent)
	onReconnecting []func(ReconnectingEvent)
	onPing         []func(PingEvent)
	backoff        Backoff
	backoffFunc    func(retry int) time.Duration // nil: the policy of retry.go
	dialRetry      time.Duration
	poisonLimit    int
	protocol       ProtocolVersion
	randomStart    bool
	lowPower       bool     // WithLowPowerKeepAlive
	dial           DialFunc // WithDialer's; nil: builtinDial
	builtinDial    dialer
	tlsConfig      *tls.Config
	receiveMaximum uint16
	messageBuffer  int
	queueMessages  int
	queueBytes     int
	maxPacketSize  int

	writeTimeout        time.Duration // 0: the ping timeout, or the connect timeout without keep alive
	inflightMessages    int
	inflightBytes       int
	subscriptions       []subSpec
	fallback            MessageHandler
	manualAck           bool
	topicAliases        bool   // alias outbound topics within the broker's maximum
	topicAliasMaximum   uint16 // inbound aliases we accept
	requestResponseInfo bool
	auth                Authenticator
	credentials         CredentialsFunc
	store               Store
	storeQoS0           bool
	editConnect         func(*ConnectPacket)
	editDisconnect      func(*DisconnectPacket)
}

func defaultConfig() *config {
	return &config{
		keepAlive:      DefaultKeepAlive,
		connectTimeout: DefaultConnectTimeout,
		sessionExpiry:  DefaultSessionExpiry,
		cleanStart:     true,
		backoff:        DefaultBackoff,
		dialRetry:      DefaultDialRetry,
		poisonLimit:    DefaultMaxFailedResumes,
		receiveMaximum: DefaultReceiveMaximum,
		messageBuffer:  DefaultMessageBuffer,
		queueMessages:  DefaultQueueMessages,
		queueBytes:     DefaultQueueBytes,

		inflightMessages:  DefaultInflightMessages,
		inflightBytes:     DefaultInflightBytes,
		topicAliasMaximum: DefaultInboundTopicAliases,
	}
}

// secret holds a password; it prints and logs as "[REDACTED]" so that it
// cannot leak through a log line, an error or a %v of the config.
type secret []byte

func (s secret) String() string             { return "[REDACTED]" }
func (s secret) GoString() string           { return "[REDACTED]" }
func (s secret) LogValue() slog.Value       { return slog.StringValue("[REDACTED]") }
func (s secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[REDACTED]")) }

// WithServer sets the broker, or several, rotated on failure (no
// default): mqtt:// or tcp:// (TCP, port 1883), mqtts://, ssl://, tls://
// (TLS, 8883), ws://, wss:// (WebSocket, 80, 443); user information is
// refused.
func WithServer(rawURLs ...string) Option {
	return optionFunc(func(c *config) error {
		if len(rawURLs) == 0 {
			return optionError("WithServer", "no URL given")
		}
		servers := make([]*url.URL, 0, len(rawURLs))
		for _, raw := range rawURLs {
			u, err := parseServerURL(raw)
			if err != nil {
				return optionError("WithServer", "%v", err)
			}
			servers = append(servers, u)
		}
		c.servers = servers
		return nil
	})
}

// schemes maps each supported URL scheme to its default port.
var schemes = map[string]string{
	"mqtt":  "1883",
	"tcp":   "1883",
	"mqtts": "8883",
	"ssl":   "8883",
	"tls":   "8883",
	"ws":    "80",
	"wss":   "443",
}

// schemeList names the supported schemes in error messages.
const schemeList = "mqtt, tcp, mqtts, ssl, tls, ws or wss"

// parseServerURL checks one server URL and fills in the default port. The
// error never repeats the URL's user information.
func parseServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold a password.
		return nil, fmt.Errorf("cannot parse server URL %q", redactURL(raw))
	}
	scheme := strings.ToLower(u.Scheme)
	port, ok := schemes[scheme]
	if !ok {
		if u.Scheme == "" {
			return nil, fmt.Errorf("server URL %q has no scheme (want %s)", redactURL(raw), schemeList)
		}
		if strings.HasPrefix(raw, u.Scheme+"://") && !strings.Contains(u.Scheme, "@") {
			return nil, fmt.Errorf("server URL %q: unsupported scheme %q (want %s)", redactURL(raw), u.Scheme, schemeList)
		}
		return nil, fmt.Errorf("server URL %q: unsupported scheme (want %s)", redactURL(raw), schemeList)
	}
	if u.User != nil {
		return nil, fmt.Errorf("server URL %q carries user information; use WithCredentials", redactURL(raw))
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("server URL %q has no host", redactURL(raw))
	}
	// url.Parse takes "h:1:2" as host "h:1" and port "2", and "h:" as h
	// without a port: neither is what the user meant, and the dial would
	// fail on every attempt ("too many colons").
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("server URL %q has an empty port", redactURL(raw))
	}
	if h := u.Hostname(); strings.Contains(h, ":") && !strings.HasPrefix(u.Host, "[") {
		return nil, fmt.Errorf("server URL %q: host %q has a colon (more than one port, or an IPv6 address without [ ])", redactURL(raw), h)
	}
	if p := u.Port(); p == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("server URL %q: port %s outside 1 to 65535", redactURL(raw), p)
	}
	u.Scheme = scheme
	return u, nil
}

func redactURL(raw string) string { return redact.URL(raw) }

// WithClientID sets the client ID, kept across reconnects ("": the broker's).
// Default: "mqttkeep" + 12 random hex digits.
func WithClientID(id string) Option {
	return optionFunc(func(c *config) error {
		if len(id) > maxTopicLen {
			return optionError("WithClientID", "%d bytes, longer than %d", len(id), maxTopicLen)
		}
		if err := validateUTF8(id); id != "" && err != nil {
			return optionError("WithClientID", "client ID is not a valid MQTT string")
		}
		c.clientID, c.clientIDSet = id, true
		return nil
	})
}

// WithKeepAlive sets the keep alive K (whole seconds ≤ 65,535 s; 0: no pings).
// Default: [DefaultKeepAlive] (30 s).
func WithKeepAlive(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case d < 0:
			return optionError("WithKeepAlive", "negative duration %v", d)
		case d%time.Second != 0:
			return optionError("WithKeepAlive", "%v is not whole seconds", d)
		case d > maxKeepAlive:
			return optionError("WithKeepAlive", "%v is longer than 65535s", d)
		}
		c.keepAlive = d
		return nil
	})
}

// WithLowPowerKeepAlive pings only as often as the broker's keep alive
// needs: when nothing was sent for K (not K/2, nor for silence from the
// broker), half the wake-ups and bytes of an idle client, for a battery or
// a metered link. A silent link death is then reported within K + T of the
// last byte sent, instead of K/2 + T ([ConnectEvent].DeadLinkBound says
// which). Default: off.
func WithLowPowerKeepAlive() Option {
	return optionFunc(func(c *config) error {
		c.lowPower = true
		return nil
	})
}

// WithPingTimeout sets the ping timeout T, ≤ 65,535 s. Default: 0 (K/2).
func WithPingTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case d < 0:
			return optionError("WithPingTimeout", "negative duration %v", d)
		case d > maxKeepAlive:
			return optionError("WithPingTimeout", "%v is longer than 65535s", d)
		}
		c.pingTimeout = d
		return nil
	})
}

// WithConnectTimeout bounds an attempt, > 0. Default: [DefaultConnectTimeout].
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return optionError("WithConnectTimeout", "must be positive, got %v", d)
		}
		c.connectTimeout = d
		return nil
	})
}

// WithCredentials sets CONNECT's user name and password. Default: none.
func WithCredentials(username, password string) Option {
	return optionFunc(func(c *config) error {
		if username == "" && password != "" {
			return optionError("WithCredentials", "a password needs a user name")
		}
		if err := validateUTF8(username); username != "" && err != nil {
			return optionError("WithCredentials", "user name is not a valid MQTT string")
		}
		if len(password) > maxTopicLen {
			return optionError("WithCredentials", "password longer than %d bytes", maxTopicLen)
		}
		c.username = username
		c.password = nil
		if password != "" {
			c.password = secret(password)
		}
		return nil
	})
}

// WithWill sets the will the broker publishes when the connection ends without
// a normal DISCONNECT (payload ≤ 65,535 bytes), unless the client reconnects
// within delay (whole seconds ≤ 4,294,967,295 s). Default: none.
func WithWill(will Message, delay time.Duration) Option {
	return optionFunc(func(c *config) error {
		if delay < 0 || delay%time.Second != 0 || delay > math.MaxUint32*time.Second {
			return optionError("WithWill", "delay %v: want whole seconds from 0 to 4294967295s", delay)
		}
		if len(will.Payload) > wire.MaxString {
			return optionError("WithWill", "payload of %d bytes, longer than MQTT's %d for a will", len(will.Payload), wire.MaxString)
		}
		m := Message{Topic: will.Topic, Payload: slices.Clone(will.Payload), QoS: will.QoS, Retain: will.Retain,
			ContentType: will.ContentType, ResponseTopic: will.ResponseTopic, CorrelationData: slices.Clone(will.CorrelationData),
			MessageExpiry: will.MessageExpiry, PayloadUTF8: will.PayloadUTF8, UserProperties: slices.Clone(will.UserProperties)}
		if _, _, err := m.toPublish(); err != nil {
			return optionError("WithWill", "%v", err)
		}
		c.will = &willConfig{msg: m, delay: delay}
		return nil
	})
}

// WithSessionExpiry sets how long the broker keeps the session after a loss,
// whole seconds ≤ 4,294,967,295 s, and also after [Client.Close]. Default:
// [DefaultSessionExpiry], ended by Close.
func WithSessionExpiry(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case d < 0:
			return optionError("WithSessionExpiry", "negative duration %v", d)
		case d%time.Second != 0:
			return optionError("WithSessionExpiry", "%v is not whole seconds", d)
		case d > math.MaxUint32*time.Second:
			return optionError("WithSessionExpiry", "%v is longer than 4294967295s", d)
		}
		c.sessionExpiry = d
		c.sessionExpirySet = true
		return nil
	})
}

// WithCleanStart(false) resumes a session on the first connect. Default: true.
func WithCleanStart(clean bool) Option {
	return optionFunc(func(c *config) error {
		c.cleanStart = clean
		return nil
	})
}

// WithLogger sets the logger (see Observability). Default: nil, discarding.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		c.logger = l
		return nil
	})
}

// WithMaxPacketSize: 0 or 64 to 268,435,460, announced; a larger packet ends
// the connection unread ([ErrPacketTooLarge]). Default: 0, MQTT's 256 MiB.
func WithMaxPacketSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 || n > wire.MaxPacket {
			return optionError("WithMaxPacketSize", "%d, want 0 to %d", n, wire.MaxPacket)
		}
		if n > 0 && n < 64 {
			return optionError("WithMaxPacketSize", "%d bytes is too small for MQTT's control packets", n)
		}
		c.maxPacketSize = n
		return nil
	})
}

// WithTLSConfig sets TLS (cloned; ServerName: the URL's host) for mqtts, ssl,
// tls and wss. Default: nil: system roots, TLS ≥ 1.2.
func WithTLSConfig(cfg *tls.Config) Option {
	return optionFunc(func(c *config) error {
		c.tlsConfig = nil
		if cfg != nil {
			c.tlsConfig = cfg.Clone() // options may be reused: never modify cfg
		}
		return nil
	})
}

// newClientID returns "mqttkeep" followed by 12 random hex digits.
func newClientID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return "mqttkeep" + hex.EncodeToString(b[:])
}

// buildConfig applies the options and checks the result as a whole.
func buildConfig(opts []Option) (*config, error) {
	c := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d is nil", ErrInvalidOption, i)
		}
		if err := o.apply(c); err != nil {
			return nil, err
		}
	}
	if len(c.servers) == 0 {
		return nil, optionError("WithServer", "no server given")
	}
	if c.storeQoS0 && c.store == nil {
		return nil, optionError("WithStoreQoS0", "no store: give WithStore too")
	}
	if c.clientID == "" && !c.clientIDSet {
		c.clientID = newClientID()
	}
	c.logClientID = new(atomic.Pointer[string])
	id := c.clientID
	c.logClientID.Store(&id)
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	} else {
		c.logger = slog.New(&clientIDHandler{h: c.logger.Handler(), id: c.logClientID})
	}
	c.builtinDial = dialer{tls: c.tlsConfig} // used when dial is nil
	return c, nil
}
