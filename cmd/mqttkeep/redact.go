package main

import (
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/mqttkeep/mqttkeep/internal/redact"
)

// redacted stands for a hidden password.
const redacted = "[REDACTED]"

// redactURL hides the user information of a URL (or of "user:pass@host"):
// everything before its last "@", a "/", "?", "#" or "@" in the password
// included.
func redactURL(raw string) string { return redact.URL(raw) }

// redactURLs hides the user information of every word of s that holds a
// URL with one ("mqtt://user:pass@host", quoted or not), leaving the rest
// of s, its spacing and line breaks, as it is.
func redactURLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexAny(s, " \t\r\n")
		if i < 0 {
			i = len(s)
		}
		word := s[:i]
		if at := strings.LastIndexByte(word, '@'); at > 0 && strings.Contains(word[:at], "://") {
			word = redactURL(word)
		}
		b.WriteString(word)
		rest := s[i:]
		j := len(rest) - len(strings.TrimLeft(rest, " \t\r\n"))
		b.WriteString(rest[:j])
		s = rest[j:]
	}
	return b.String()
}

// A secret is a password's text as it may show up in a message, and what
// replaces it.
type secret struct{ text, with string }

// secrets are the passwords a command line carries, longest first: the
// values of -P and --pw (also glued, "-Psecret", which the flag package
// reports as an unknown flag), of -D connect authentication-data, and the
// password of any argument that holds user information
// ("mqtt://user:pass@host", "user:pass@host"), as written, percent-decoded
// and cut where a URL parser would cut it ("/", "?", "#", a space).
type secrets []secret

// secretsIn finds the passwords in args. It reads the words as they are,
// without the flag package: a word after -P is a password even where the
// flag package would take it for something else, which can only hide
// more.
func secretsIn(args []string) secrets {
	var s secrets
	add := func(pw string) {
		if pw == "" {
			return
		}
		for _, v := range passwordForms(pw) {
			s = append(s, secret{text: v, with: redacted})
		}
	}
	for i, a := range args {
		if flag, value, inline, ok := passwordFlag(a); ok {
			switch {
			case inline:
				add(value)
				// The flag package names an unknown flag as given, up
				// to "=" ("-Psecret=x": "-Psecret"), or quotes the word.
				s = append(s, secret{text: a, with: flag + redacted})
				if name, _, _ := strings.Cut(a, "="); name != flag {
					s = append(s, secret{text: name, with: flag + redacted})
				}
			case i+1 < len(args):
				add(args[i+1])
			}
		}
		if isPropertyFlag(a) && i+3 < len(args) && strings.EqualFold(args[i+2], "authentication-data") {
			add(args[i+3])
		}
		if pw, ok := userinfoPassword(a); ok {
			add(pw)
			// The whole word, as a message may quote it.
			s = append(s, secret{text: a, with: redactURL(a)})
		}
	}
	sort.SliceStable(s, func(i, j int) bool { return len(s[i].text) > len(s[j].text) })
	return s
}

// passwordFlag reports whether a is -P or --pw (with one to three
// dashes), and whether the password is in a itself (inline: "-Psecret",
// "-P=secret", "--pw=secret") or the next word. flag is a's dashes and
// name ("-P", "--pw").
func passwordFlag(a string) (flag, value string, inline, ok bool) {
	name := strings.TrimLeft(a, "-")
	dashes := len(a) - len(name)
	if dashes == 0 || dashes > 3 {
		return "", "", false, false
	}
	for _, p := range []string{"pw", "P"} {
		if rest, found := strings.CutPrefix(name, p); found {
			if rest == "" {
				return a, "", false, true
			}
			return a[:dashes+len(p)], strings.TrimPrefix(rest, "="), true, true
		}
	}
	return "", "", false, false
}

// isPropertyFlag reports whether a is -D or --property.
func isPropertyFlag(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "D", "property":
		return strings.HasPrefix(a, "-")
	}
	return false
}

// userinfoPassword returns the password of an argument that carries user
// information: what follows the first ":" before the last "@", after the
// scheme when there is one ("mqtt://user:pass@host"). Without a scheme
// the argument must read "user:pass@host", with no "/", "#" or "+" in the
// user name: a topic such as "alerts/bob@example.com" or "a/b:c@d"
// holds no password.
func userinfoPassword(a string) (string, bool) {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return "", false
	}
	info, schemed := a[:at], false
	if _, rest, ok := strings.Cut(info, "://"); ok {
		info, schemed = rest, true
	}
	user, pw, ok := strings.Cut(info, ":")
	if !ok || pw == "" || (!schemed && strings.ContainsAny(user, "/#+")) {
		return "", false
	}
	return pw, true
}

// passwordForms are the texts under which pw may be shown: itself, quoted
// as %q quotes it, percent-decoded, and its parts between "/", "?", "#"
// and spaces, where URL parsers and word splitting cut it.
func passwordForms(pw string) []string {
	forms := []string{pw}
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
		forms = append(forms, dec)
	}
	for _, f := range forms {
		if q := strconv.Quote(f); q[1:len(q)-1] != f {
			forms = append(forms, q[1:len(q)-1])
		}
		if parts := strings.FieldsFunc(f, func(r rune) bool { return strings.ContainsRune("/?# \t", r) }); len(parts) > 1 {
			forms = append(forms, parts...)
		}
	}
	return forms
}

// redact hides every secret in msg. Texts of fewer than 3 characters are
// hidden only where they stand quoted ("ab"): hiding every "a" would
// garble the message, and a lone flag value is only ever echoed quoted.
func (s secrets) redact(msg string) string {
	for _, sec := range s {
		if len(sec.text) < 3 {
			msg = strings.ReplaceAll(msg, `"`+sec.text+`"`, `"`+sec.with+`"`)
			continue
		}
		msg = strings.ReplaceAll(msg, sec.text, sec.with)
	}
	return msg
}

// redactingWriter writes through w what is written to it, secrets
// hidden. Each Write is redacted by itself: the command writes whole
// lines (one log record, one report) per Write.
type redactingWriter struct {
	w       io.Writer
	secrets secrets
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.secrets.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
