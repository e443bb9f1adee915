package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// checkReport is what "mqttkeep check" found, printed as text or JSON.
type checkReport struct {
	Broker           string  `json:"broker"`
	ConnectMS        float64 `json:"connect_ms"`
	ProtocolVersion  string  `json:"protocol_version"` // "5" or "3.1.1": what was negotiated
	ClientID         string  `json:"client_id"`
	ClientIDAssigned bool    `json:"client_id_assigned"`
	SessionPresent   bool    `json:"session_present"`
	SessionExpiryS   float64 `json:"session_expiry_s"`
	ExpiryImposed    bool    `json:"session_expiry_imposed"`
	KeepAliveAskedS  float64 `json:"keep_alive_asked_s"`
	KeepAliveS       float64 `json:"keep_alive_s"`
	KeepAliveImposed bool    `json:"keep_alive_imposed"`
	// DeadLinkWithinS is how long a silent link death may go unreported:
	// K/2 without traffic, then the ping timeout (K/2). 0 when keep alive
	// is off.
	DeadLinkWithinS float64 `json:"dead_link_reported_within_s"`
	// BrokerDropsAfterS is when the broker gives up on a silent client:
	// 1.5 K (MQTT 3.1.2-22).
	BrokerDropsAfterS   float64   `json:"broker_drops_silent_client_after_s"`
	MaximumQoS          byte      `json:"maximum_qos"`
	RetainAvailable     bool      `json:"retain_available"`
	MaximumPacketSize   int       `json:"maximum_packet_size"`
	ReceiveMaximum      int       `json:"receive_maximum"`
	TopicAliasMaximum   int       `json:"topic_alias_maximum"`
	WildcardSubs        bool      `json:"wildcard_subscriptions_available"`
	SubscriptionIDs     bool      `json:"subscription_ids_available"`
	SharedSubs          bool      `json:"shared_subscriptions_available"`
	ResponseInformation string    `json:"response_information"`
	ServerReference     string    `json:"server_reference"`
	AuthMethod          string    `json:"auth_method"`
	TLS                 *checkTLS `json:"tls"`
	RTT                 *checkRTT `json:"rtt_ms"`
	Notes               []string  `json:"notes"`
	caps                mqttkeep.Capabilities
}

type checkTLS struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher_suite"`
	ALPN        string `json:"alpn"`
	ServerName  string `json:"server_name"` // the name the certificate was checked against

	Certificates []checkCert `json:"certificates"`
}

type checkCert struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	IPs       []string  `json:"ip_addresses,omitempty"`
}

type checkRTT struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Avg   float64 `json:"avg"`
	Max   float64 `json:"max"`
}

// runCheck is "mqttkeep check": connect once, and print what the broker
// announced in its CONNACK, the TLS handshake, a few round trips, and
// what they mean for the keep alive.
func runCheck(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("check")
	var cf connFlags
	cf.register(fs, "check")
	cf.needDialer = true
	pings := countFlag{n: 5, min: 0, max: 1000}
	fs.Var(&pings, "pings", "PINGREQs for the round trip")
	var jsonOut bool
	fs.BoolVar(&jsonOut, "json", false, "one JSON object")
	timeout := durationFlag{d: mqttkeep.DefaultConnectTimeout, fractional: true, min: time.Millisecond}
	fs.Var(&timeout, "timeout", "connect timeout")
	if code, done := parseArgs(fs, "check", args, s, &cf.password, cf.props.flag()); done {
		return code
	}
	set := flagsSet(fs)
	opts, err := cf.options(fs, s.err)
	if err != nil {
		return usageFail(s, "check", err.Error(), &cf.password)
	}
	opts = append(opts, mqttkeep.WithConnectTimeout(timeout.d))
	client, err := mqttkeep.New(opts...)
	if err != nil {
		return usageFail(s, "check", optionErrText(err), &cf.password)
	}
	rep := &reporter{cmd: "check", w: s.err, secret: cf.password, quiet: cf.quiet}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = client.Close(cctx)
	}()
	events := make(chan mqttkeep.ConnectEvent, 1)
	client.OnConnect(func(e mqttkeep.ConnectEvent) {
		select {
		case events <- e:
		default:
		}
	})
	began := time.Now()
	if code, ok := connectPub(ctx, client, rep, false, 0); !ok {
		if code != exitFail {
			code = exitFail
		}
		return code
	}
	connectTime := time.Since(began)
	var ev mqttkeep.ConnectEvent
	select {
	case ev = <-events:
	case <-ctx.Done():
		return exitFail
	}
	r := &checkReport{Broker: cf.server, ConnectMS: msf(connectTime), ClientID: client.ClientID()}
	r.fill(ev, cf.keepAlive.d, askedExpiry(&cf, set))
	if st, name, ok := cf.dialer.tlsState(); ok {
		r.TLS = tlsReport(st, name)
		if cf.tls.insecure {
			r.TLS.ServerName = ""
			r.Notes = append(r.Notes, "--insecure: the certificate's host name was not checked (its chain was)")
		}
	}
	if pings.n > 0 {
		var st pingStats
		for range pings.n {
			pctx, cancel := context.WithTimeout(ctx, max(time.Second, r.caps.ServerKeepAlive))
			rtt, err := client.Ping(pctx)
			cancel()
			st.sent++
			if err == nil {
				st.add(rtt)
			}
		}
		if st.received > 0 {
			r.RTT = &checkRTT{Count: st.received, Min: msf(st.min), Avg: float64(st.sum) / float64(st.received) / 1e6, Max: msf(st.max)}
		}
		if st.received < st.sent {
			r.Notes = append(r.Notes, fmt.Sprintf("%d of %s got no PINGRESP", st.sent-st.received, plural(st.sent, "PINGREQ", "PINGREQs")))
		}
		if r.RTT != nil && r.DeadLinkWithinS > 0 && r.RTT.Max/1e3 > r.DeadLinkWithinS/2 {
			r.Notes = append(r.Notes, fmt.Sprintf("the slowest round trip (%.1f ms) is longer than the ping timeout (K/2 = %g s): pings will time out and the link will be dropped", r.RTT.Max, r.DeadLinkWithinS/2))
		}
	}
	if jsonOut {
		if r.Notes == nil {
			r.Notes = []string{}
		}
		b, _ := json.Marshal(r)
		_, _ = s.out.Write(append(b, '\n'))
		return exitOK
	}
	_, _ = s.out.Write(r.text())
	return exitOK
}

// askedExpiry is the session expiry the client asked for.
func askedExpiry(cf *connFlags, set map[string]bool) time.Duration {
	switch {
	case set["x"]:
		n, _ := sessionExpirySecs(cf.expiry)
		return time.Duration(n) * time.Second
	case cf.props.sessionExpiry != nil:
		return time.Duration(*cf.props.sessionExpiry) * time.Second
	case cf.keepSess:
		return math.MaxUint32 * time.Second
	}
	return mqttkeep.DefaultSessionExpiry
}

// fill takes the CONNACK's figures and works out the keep alive's.
func (r *checkReport) fill(ev mqttkeep.ConnectEvent, askedK, askedExpiry time.Duration) {
	c := ev.Capabilities
	r.caps = c
	r.ClientIDAssigned = c.AssignedClientID != ""
	r.SessionPresent = ev.SessionPresent
	r.SessionExpiryS, r.ExpiryImposed = askedExpiry.Seconds(), c.SessionExpirySet
	if c.SessionExpirySet {
		r.SessionExpiryS = c.SessionExpiry.Seconds()
	}
	r.KeepAliveAskedS = askedK.Seconds()
	r.KeepAliveS, r.KeepAliveImposed = ev.KeepAlive.Seconds(), c.ServerKeepAliveSet
	if ev.KeepAlive > 0 {
		r.DeadLinkWithinS = ev.KeepAlive.Seconds() // K/2 + ping timeout K/2
		r.BrokerDropsAfterS = 1.5 * ev.KeepAlive.Seconds()
	}
	r.MaximumQoS, r.RetainAvailable = byte(c.MaximumQoS), c.RetainAvailable
	r.ProtocolVersion = c.ProtocolVersion.String()
	r.MaximumPacketSize, r.ReceiveMaximum, r.TopicAliasMaximum = c.MaximumPacketSize, c.ReceiveMaximum, c.TopicAliasMaximum
	r.WildcardSubs, r.SubscriptionIDs, r.SharedSubs = c.WildcardSubscriptionsAvailable, c.SubscriptionIDsAvailable, c.SharedSubscriptionsAvailable
	r.ResponseInformation, r.ServerReference, r.AuthMethod = c.ResponseInformation, c.ServerReference, c.AuthMethod
}

// tlsReport describes a TLS handshake.
func tlsReport(st tls.ConnectionState, serverName string) *checkTLS {
	t := &checkTLS{Version: tlsVersionName(st.Version), CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ALPN: st.NegotiatedProtocol, ServerName: serverName}
	for _, c := range st.PeerCertificates {
		cc := checkCert{Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DNSNames: c.DNSNames}
		for _, ip := range c.IPAddresses {
			cc.IPs = append(cc.IPs, ip.String())
		}
		t.Certificates = append(t.Certificates, cc)
	}
	return t
}

// text is the report for people.
func (r *checkReport) text() []byte {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	avail := func(ok bool) string {
		if ok {
			return "available"
		}
		return "NOT available"
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	row("broker", "%s", r.Broker)
	row("connected in", "%.1f ms (dial, TLS if any, CONNECT/CONNACK)", r.ConnectMS)
	if r.ProtocolVersion == mqttkeep.MQTT311.String() {
		row("protocol", "MQTT 3.1.1 (the broker refused MQTT 5, or -V mqttv311): no properties, no reason codes,")
		row("", " no session expiry, no enhanced authentication; the broker announces none of the limits below")
	} else {
		row("protocol", "MQTT %s", r.ProtocolVersion)
	}
	id := "ours"
	if r.ClientIDAssigned {
		id = "assigned by the broker"
	}
	row("client ID", "%s (%s)", r.ClientID, id)
	expiry := fmt.Sprintf("%s asked", secsText(r.SessionExpiryS))
	if r.ExpiryImposed {
		expiry = fmt.Sprintf("%s, imposed by the broker", secsText(r.SessionExpiryS))
	}
	row("session", "present %t; expiry %s", r.SessionPresent, expiry)
	switch {
	case r.KeepAliveS == 0:
		row("keep alive", "0: no PINGREQs; a silently dead link goes unnoticed until a write fails (the kernel's retransmissions, often 15 minutes or more)")
	case r.KeepAliveImposed:
		row("keep alive", "broker imposes K = %s (we asked %s): a dead link is reported within %s", secsText(r.KeepAliveS), secsText(r.KeepAliveAskedS), secsText(r.DeadLinkWithinS))
	default:
		row("keep alive", "K = %s (ours; the broker did not impose one): a dead link is reported within %s", secsText(r.KeepAliveS), secsText(r.DeadLinkWithinS))
	}
	if r.KeepAliveS > 0 {
		row("", "(a PINGREQ after K/2 = %s without traffic, the link declared dead if nothing answers within K/2;", secsText(r.KeepAliveS/2))
		row("", " the broker drops a client silent for 1.5 K = %s)", secsText(r.BrokerDropsAfterS))
	}
	row("maximum QoS", "%d", r.MaximumQoS)
	row("retain", "%s", avail(r.RetainAvailable))
	if r.MaximumPacketSize == 0 {
		row("maximum packet size", "not announced: MQTT's own limit (268435460 bytes)")
	} else {
		row("maximum packet size", "%s", plural(r.MaximumPacketSize, "byte", "bytes"))
	}
	rm := plural(r.ReceiveMaximum, "QoS 1/2 message", "QoS 1/2 messages") + " in flight towards the broker"
	if r.ReceiveMaximum == 65535 {
		rm += " (also MQTT's value when not announced)"
	}
	row("receive maximum", "%s", rm)
	if r.TopicAliasMaximum == 0 {
		row("topic alias maximum", "0: the broker takes no topic aliases from us")
	} else {
		row("topic alias maximum", "%d", r.TopicAliasMaximum)
	}
	row("wildcard subs", "%s", avail(r.WildcardSubs))
	row("subscription ids", "%s", avail(r.SubscriptionIDs))
	row("shared subs", "%s", avail(r.SharedSubs))
	row("response info", "%s", orDash(r.ResponseInformation))
	row("server reference", "%s", orDash(r.ServerReference))
	row("auth method", "%s", orDash(r.AuthMethod))
	if r.TLS == nil {
		row("TLS", "none (plain connection)")
	} else {
		row("TLS", "%s, %s, ALPN %s, certificate checked for %s", r.TLS.Version, r.TLS.CipherSuite, orDash(r.TLS.ALPN), orDash(r.TLS.ServerName))
		for i, c := range r.TLS.Certificates {
			names := append(append([]string(nil), c.DNSNames...), c.IPs...)
			row(fmt.Sprintf("certificate %d", i), "subject %s; issuer %s", c.Subject, c.Issuer)
			row("", "valid %s to %s (%s)%s", c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly),
				expiresIn(c.NotAfter, time.Now()), namesText(names))
		}
	}
	if r.RTT != nil {
		row("round trip", "%s: min/avg/max = %.3f/%.3f/%.3f ms", plural(r.RTT.Count, "PINGREQ", "PINGREQs"), r.RTT.Min, r.RTT.Avg, r.RTT.Max)
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	_ = tw.Flush()
	return b.Bytes()
}

func namesText(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return "; for " + strings.Join(names, ", ")
}

// secsText prints seconds as "60 s", or "never" for MQTT's 4294967295.
func secsText(s float64) string {
	if s >= math.MaxUint32 {
		return "never (4294967295 s)"
	}
	return fmt.Sprintf("%g s", s)
}
