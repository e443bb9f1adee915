// Package redact hides credentials in server URLs, for the library's
// errors and logs and the command's output alike.
package redact

import "strings"

// URL returns a server URL as it may appear in a log line or an
// error: everything up to the last "@" after the scheme, where a user
// name and password would be, replaced by "[REDACTED]" — also when the
// password itself holds "/", "?" or "@", or the scheme is unknown. A URL
// without "@" is returned as it is.
func URL(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	prefix := ""
	if scheme, _, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, "@:/") {
		prefix = scheme + "://"
	}
	return prefix + "[REDACTED]@" + raw[at+1:]
}
