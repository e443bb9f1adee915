package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttkeep/mqttkeep"
)

// connFlags are the connection flags of sub, pub, ping and check, named
// and meant as mosquitto_sub's and mosquitto_pub's.
type connFlags struct {
	cmd       string
	url       string // -L
	host      string
	port      int
	unix      string // --unix
	bind      string // -A
	clientID  string
	idPrefix  string // -I
	user      string
	password  string
	keepAlive durationFlag
	keepSess  bool   // -c: mosquitto's "disable clean session"
	expiry    string // -x as given
	protocol  string // -V
	debug     bool
	quiet     bool
	nodelay   bool
	will      willFlags
	tls       tlsFlags
	props     props

	// Set by options.
	urlTopic    string // the topic in an mqtt:// -L URL
	hasURLTopic bool
	server      string // the URL the client connects to (no user information)
	dialer      *netDialer
	skip        map[string]bool // short names the command uses for its own flags
	// needDialer makes options install the command's own dialer even
	// without -A or --unix ("mqttkeep check" reads the TLS state).
	needDialer bool
}

// willFlags are mosquitto's --will-* flags, plus our --will-delay.
type willFlags struct {
	topic, payload string
	qos            qosFlag
	retain         bool
	delay          durationFlag
}

func (c *connFlags) register(fs *flag.FlagSet, cmd string) { c.registerExcept(fs, cmd) }

// registerExcept registers the flags but the short names in except, which
// the command uses for something else (ping's -c count and -i interval):
// their long forms (--id, --disable-clean-session) stay.
func (c *connFlags) registerExcept(fs *flag.FlagSet, cmd string, except ...string) {
	c.skip = make(map[string]bool)
	for _, n := range except {
		c.skip[n] = true
	}
	keep := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if !c.skip[n] {
				out = append(out, n)
			}
		}
		return out
	}
	c.cmd = cmd
	c.props.cmd = cmd
	c.keepAlive = durationFlag{d: mqttkeep.DefaultKeepAlive, wholeSecs: true, max: 65535 * time.Second}
	c.host = "localhost"
	stringVar(fs, &c.url, "broker URL", "L", "url")
	stringVar(fs, &c.host, "broker host", "h", "host")
	for _, n := range []string{"p", "port"} {
		fs.IntVar(&c.port, n, 0, "broker port")
	}
	fs.StringVar(&c.unix, "unix", "", "unix socket path")
	fs.StringVar(&c.bind, "A", "", "local address to bind")
	stringVar(fs, &c.clientID, "client ID", keep("i", "id")...)
	stringVar(fs, &c.idPrefix, "client ID prefix", "I", "id-prefix")
	stringVar(fs, &c.user, "user name", "u", "username")
	stringVar(fs, &c.password, "password", "P", "pw")
	both(fs, &c.keepAlive, "keep alive", "k", "keepalive")
	boolVar(fs, &c.keepSess, "keep the session", keep("c", "disable-clean-session")...)
	fs.StringVar(&c.expiry, "x", "", "session expiry interval")
	stringVar(fs, &c.protocol, "MQTT version", "V", "protocol-version")
	boolVar(fs, &c.debug, "debug log", "d", "debug")
	fs.BoolVar(&c.quiet, "quiet", false, "no messages on stderr")
	fs.BoolVar(&c.nodelay, "nodelay", false, "accepted: Go disables Nagle's algorithm already")
	fs.StringVar(&c.will.topic, "will-topic", "", "will topic")
	fs.StringVar(&c.will.payload, "will-payload", "", "will payload")
	fs.Var(&c.will.qos, "will-qos", "will QoS")
	fs.BoolVar(&c.will.retain, "will-retain", false, "retain the will")
	c.will.delay = durationFlag{wholeSecs: true, max: math.MaxUint32 * time.Second}
	fs.Var(&c.will.delay, "will-delay", "will delay interval")
	c.tls.register(fs)
	unsupported(fs, "DNS SRV lookups are not implemented: give the broker with -h or -L", true, "S")
	unsupported(fs, "SOCKS5 proxies are not implemented", false, "proxy")
}

// options turns the connection flags into client options. The error is a
// *usageError; it never contains the password.
func (c *connFlags) options(fs *flag.FlagSet, logTo io.Writer) ([]mqttkeep.Option, error) {
	set := flagsSet(fs)
	version, err := protocolVersion(c.protocol)
	if err != nil {
		return nil, err
	}
	server, host, user, pass, err := c.serverURL(set)
	if err != nil {
		return nil, err
	}
	c.server = server
	if anySet(set, "u", "username") {
		user = c.user
	}
	if anySet(set, "P", "pw") {
		pass = c.password
	}
	if pass != "" && user == "" {
		return nil, usagef("a password (-P) needs a user name (-u)")
	}
	opts := []mqttkeep.Option{mqttkeep.WithServer(server), mqttkeep.WithKeepAlive(c.keepAlive.d), mqttkeep.WithProtocolVersion(version)}

	id, err := c.clientIDFlag(set)
	if err != nil {
		return nil, err
	}
	if id != "" {
		opts = append(opts, mqttkeep.WithClientID(id))
	}
	sess, err := c.sessionOptions(set, id)
	if err != nil {
		return nil, err
	}
	opts = append(opts, sess...)
	if user != "" {
		opts = append(opts, mqttkeep.WithCredentials(user, pass))
	}
	will, err := c.willOptions(set)
	if err != nil {
		return nil, err
	}
	opts = append(opts, will...)
	popts, err := c.props.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, popts...)

	tlsOn := strings.HasPrefix(server, "mqtts://") || strings.HasPrefix(server, "wss://")
	if c.tls.anyGiven() && !tlsOn {
		return nil, usagef("TLS flags need TLS: give --cafile, --capath, --tls-use-os-certs or an mqtts:// URL")
	}
	if c.bind != "" || c.unix != "" || c.needDialer {
		c.dialer = &netDialer{bind: c.bind, unix: c.unix}
		opts = append(opts, mqttkeep.WithDialer(c.dialer.dial))
	}
	if tlsOn {
		cfg, err := c.tls.config(host)
		if err != nil {
			return nil, err
		}
		if c.dialer != nil {
			c.dialer.tls = cfg
		} else {
			opts = append(opts, mqttkeep.WithTLSConfig(cfg))
		}
	}
	if c.debug {
		opts = append(opts, mqttkeep.WithLogger(slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return opts, nil
}

// serverURL works out the URL to connect to from -L, or -h/-p/--unix and
// the TLS flags, as mosquitto does: TLS when the scheme says so, when a
// CA (--cafile, --capath, --tls-use-os-certs) is given, or on port 8883.
func (c *connFlags) serverURL(set map[string]bool) (server, host, user, pass string, err error) {
	hostGiven := anySet(set, "h", "host", "p", "port")
	if c.unix != "" && (hostGiven || anySet(set, "L", "url")) {
		return "", "", "", "", usagef("--unix replaces -h, -p and -L: give only one of them")
	}
	if anySet(set, "L", "url") {
		if hostGiven {
			return "", "", "", "", usagef("give the broker either with -L URL or with -h HOST -p PORT, not both")
		}
		b, err := parseBrokerURL(c.url)
		if err != nil {
			return "", "", "", "", err
		}
		c.urlTopic, c.hasURLTopic = b.topic, b.hasTopic
		scheme, port := b.scheme, b.port
		if !b.tls() && c.tls.enables() {
			// mosquitto turns TLS on for a CA even with mqtt://, on the
			// URL's port.
			switch scheme {
			case "ws":
				scheme = "wss"
				if port == "" {
					port = "80"
				}
			default:
				scheme = "mqtts"
				if port == "" {
					port = "1883"
				}
			}
		}
		hostport := b.host
		if strings.Contains(hostport, ":") {
			hostport = "[" + hostport + "]"
		}
		if port != "" {
			hostport = net.JoinHostPort(b.host, port)
		}
		return scheme + "://" + hostport + b.wsPath, b.host, b.user, b.pass, nil
	}
	if c.host == "" {
		return "", "", "", "", usagef("-h: empty host name")
	}
	if strings.ContainsAny(c.host, "@/") {
		// Not echoed: it may hold a password (-h user:pass@host).
		return "", "", "", "", usagef("-h: not a host name (give a URL with -L, a user name with -u and a password with -P)")
	}
	if set["p"] || set["port"] {
		if c.port < 1 || c.port > 65535 {
			return "", "", "", "", usagef("-p %d: want a port from 1 to 65535", c.port)
		}
	}
	port := c.port
	tlsOn := c.tls.enables() || port == 8883
	if port == 0 {
		port = 1883
		if tlsOn {
			port = 8883
		}
	}
	scheme := "mqtt"
	if tlsOn {
		scheme = "mqtts"
	}
	urlHost := c.host
	if c.unix != "" {
		urlHost = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(urlHost, strconv.Itoa(port)), c.host, "", "", nil
}

// given reports whether one of the connection flags names was given,
// ignoring the short names the command took for itself.
func (c *connFlags) given(set map[string]bool, names ...string) bool {
	for _, n := range names {
		if set[n] && !c.skip[n] {
			return true
		}
	}
	return false
}

// protocolVersion reads -V as mosquitto's: mqttv5 (5) or mqttv311
// (311); without it the library negotiates (5, else 3.1.1).
func protocolVersion(v string) (mqttkeep.ProtocolVersion, error) {
	switch v {
	case "":
		return mqttkeep.ProtocolAuto, nil
	case "5", "mqttv5":
		return mqttkeep.MQTT5, nil
	case "311", "mqttv311":
		return mqttkeep.MQTT311, nil
	case "31", "mqttv31":
		return 0, usagef("-V %s: MQTT 3.1 is not supported (mqttv311 or mqttv5)", v)
	}
	return 0, usagef("-V %q: want mqttv5 (or 5) or mqttv311 (or 311); without -V the version is negotiated", v)
}

// clientIDFlag is the client ID from -i or -I (the prefix followed by the
// process id, as mosquitto does), "" for the library's default.
func (c *connFlags) clientIDFlag(set map[string]bool) (string, error) {
	iGiven, IGiven := c.given(set, "i", "id"), c.given(set, "I", "id-prefix")
	if iGiven && IGiven {
		return "", usagef("-i and -I cannot be used together")
	}
	id := c.clientID
	if IGiven {
		id = c.idPrefix + strconv.Itoa(os.Getpid())
	}
	if len(id) > 65535 || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return "", usagef("-i: the client ID must be valid UTF-8 without NUL, at most 65535 bytes")
	}
	if iGiven && id == "" {
		return "", usagef("-i: empty client ID (leave -i out for a generated one)")
	}
	return id, nil
}

// sessionOptions handles -c and -x (and -D connect session-expiry-interval)
// as mosquitto does: -c keeps the broker's session (Clean Start 0) and,
// without -x, makes it never expire; a session that never expires needs a
// client ID given with -i.
func (c *connFlags) sessionOptions(set map[string]bool, id string) ([]mqttkeep.Option, error) {
	var opts []mqttkeep.Option
	if c.keepSess {
		opts = append(opts, mqttkeep.WithCleanStart(false))
	}
	var expiry uint32
	var expirySet bool
	if set["x"] {
		n, err := sessionExpirySecs(c.expiry)
		if err != nil {
			return nil, usagef("-x %q: %v", c.expiry, err)
		}
		expiry, expirySet = n, true
	}
	if c.props.sessionExpiry != nil {
		if expirySet {
			return nil, usagef("give the session expiry either with -x or with -D connect session-expiry-interval, not both")
		}
		expiry, expirySet = *c.props.sessionExpiry, true
	}
	if c.keepSess && !expirySet {
		expiry, expirySet = math.MaxUint32, true
	}
	if expirySet {
		if expiry == math.MaxUint32 && (id == "" || c.given(set, "I", "id-prefix")) {
			return nil, usagef("a session that never expires (-c, or -x -1) needs a client ID given with -i")
		}
		opts = append(opts, mqttkeep.WithSessionExpiry(time.Duration(expiry)*time.Second))
	}
	return opts, nil
}

// willOptions handles the --will-* flags and -D will properties.
func (c *connFlags) willOptions(set map[string]bool) ([]mqttkeep.Option, error) {
	w := c.will
	if w.topic == "" {
		if anySet(set, "will-payload", "will-qos", "will-retain", "will-delay") || c.props.willGiven {
			return nil, usagef("will flags (--will-payload, --will-qos, --will-retain, --will-delay, -D will) need --will-topic")
		}
		if set["will-topic"] {
			return nil, usagef("--will-topic: empty topic")
		}
		return nil, nil
	}
	if err := mqttkeep.ValidateTopicName(w.topic); err != nil {
		return nil, usagef("--will-topic: %s", errText(err))
	}
	delay := w.delay.d
	if c.props.willDelay != nil {
		if set["will-delay"] {
			return nil, usagef("give the will delay either with --will-delay or with -D will will-delay-interval, not both")
		}
		delay = time.Duration(*c.props.willDelay) * time.Second
	}
	var will mqttkeep.Message
	for _, o := range c.props.will {
		o(&will)
	}
	will.Topic, will.Payload, will.QoS, will.Retain = w.topic, []byte(w.payload), mqttkeep.QoS(w.qos), w.retain
	return []mqttkeep.Option{mqttkeep.WithWill(will, delay)}, nil
}

// optionErrText words an error from mqttkeep.New for the command line:
// the library names its options, the user knows the flags.
func optionErrText(err error) string {
	msg := errText(err)
	for option, flag := range map[string]string{
		"WithServer": "-L", "WithClientID": "-i",
		"WithKeepAlive": "-k", "WithCredentials": "-u/-P", "WithWill": "--will-*",
		"WithSessionExpiry": "-x", "WithReceiveMaximum": "-D connect receive-maximum",
		"WithMaxPacketSize": "-D connect maximum-packet-size", "WithTLSConfig": "TLS", "WithInflightLimits": "-M",
	} {
		if rest, ok := strings.CutPrefix(msg, "invalid option "+option+": "); ok {
			if rest, ok := strings.CutPrefix(rest, "server URL "); ok {
				return flag + " " + rest
			}
			return flag + ": " + rest
		}
	}
	return msg
}

// errText is an error's message without the library's repeated
// "mqttkeep: " prefixes, for one-line reports.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "mqttkeep: ", "")
}

// isFinal reports whether err is a refusal that retrying cannot fix (bad
// credentials, not authorized, ...): the client has stopped.
func isFinal(err error) bool {
	var rc *mqttkeep.ReasonCodeError
	return errors.As(err, &rc) && rc.Final()
}
