package main

import (
	"net/url"
	"strconv"
	"strings"
)

// brokerURL is a -L URL taken apart.
type brokerURL struct {
	scheme     string // as given, lower case
	host, port string // port "" when not given
	user, pass string
	hasUser    bool
	// topic is the path of an mqtt:// or mqtts:// URL (mosquitto's
	// mqtt(s)://host[:port]/topic), "" when none was given.
	topic    string
	hasTopic bool
	// wsPath is the path of a ws:// or wss:// URL: the WebSocket endpoint.
	wsPath string
}

// tls reports whether the scheme is a TLS one.
func (b *brokerURL) tls() bool {
	switch b.scheme {
	case "mqtts", "ssl", "tls", "wss":
		return true
	}
	return false
}

// websocket reports whether the scheme is ws:// or wss://.
func (b *brokerURL) websocket() bool { return b.scheme == "ws" || b.scheme == "wss" }

// parseBrokerURL checks a -L URL and splits it. As with mosquitto, the
// path of an mqtt:// (tcp://, mqtts://, ...) URL is the topic, taken as it
// is written ("sensors/#" included: no fragment, no query); a ws:// or
// wss:// URL keeps its path for the WebSocket handshake. User information
// is percent-decoded ("%2F" for a "/" in a password). Errors never repeat
// the user information.
func parseBrokerURL(raw string) (*brokerURL, error) {
	shown := redactURL(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, usagef("-L %q: want a URL like mqtt://host:1883/topic", shown)
	}
	b := &brokerURL{scheme: strings.ToLower(scheme)}
	switch b.scheme {
	case "mqtt", "tcp", "mqtts", "ssl", "tls", "ws", "wss":
	default:
		return nil, usagef("-L %q: unsupported scheme %q (want mqtt, mqtts, tcp, ssl, tls, ws or wss)", shown, scheme)
	}
	authority, path, hasPath := strings.Cut(rest, "/")
	// A "/", "?", "#" or space in a password, unencoded, cuts the URL
	// short (mosquitto's topic starts at the first "/" too): say how to
	// write them.
	encodeHint := ""
	if strings.Contains(path, "@") || strings.ContainsAny(authority, "?# ") {
		encodeHint = `; in a user name or password write "/" as %2F, "?" as %3F, "#" as %23 and a space as %20`
	}
	if strings.ContainsAny(authority, "?#") {
		return nil, usagef("-L %q: a query or fragment before the path%s", shown, encodeHint)
	}
	if b.websocket() {
		if hasPath {
			b.wsPath = "/" + path
		}
	} else if hasPath {
		b.topic, b.hasTopic = path, true
	}
	u, err := url.Parse(b.scheme + "://" + authority)
	if err != nil {
		return nil, usagef("-L %q: not a valid URL (want %s://host[:port]/topic, a user name and password before the host as user:password@)%s", shown, b.scheme, encodeHint)
	}
	if u.Hostname() == "" {
		return nil, usagef("-L %q: no host", shown)
	}
	b.host, b.port = u.Hostname(), u.Port()
	if b.port != "" {
		if n, err := strconv.Atoi(b.port); err != nil || n < 1 || n > 65535 {
			return nil, usagef("-L %q: port %q is not a number from 1 to 65535%s", shown, b.port, encodeHint)
		}
	}
	if b.websocket() && strings.ContainsAny(b.wsPath, "?#") {
		return nil, usagef("-L %q: unexpected query or fragment", shown)
	}
	if u.User != nil {
		b.user, b.hasUser = u.User.Username(), true
		b.pass, _ = u.User.Password()
	}
	return b, nil
}
