package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// printer writes received messages as mosquitto_sub does: the payload
// alone (the default), "topic payload" (-v; an empty payload is
// "topic (null)"), or a -F format; each followed by a newline unless -N.
type printer struct {
	verbose bool
	eol     bool
	pretty  bool    // --pretty: indented %j / %J
	format  []token // -F, parsed; nil: none
}

// tokenKind says what a parsed -F token prints.
type tokenKind byte

const (
	tokLiteral tokenKind = iota // text
	tokPercent                  // a %-sequence: a message field
	tokTime                     // an @-sequence: strftime
)

// token is one piece of a -F format.
type token struct {
	kind      tokenKind
	text      []byte // tokLiteral
	conv      byte   // tokPercent: the letter; tokTime: the strftime letter
	leftAlign bool   // '-' flag
	zeroPad   bool   // '0' flag
	width     int
	precision int // -1: none
}

// percentConvs are the %-sequences of mosquitto_sub 2.0 that this command
// prints.
const percentConvs = "%ACDEFIjJlmPpqRrStUxX"

// parseFormat parses a -F format, checking it as mosquitto_sub does: an
// unknown or incomplete sequence is an error.
func parseFormat(f string) ([]token, error) {
	var toks []token
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			toks = append(toks, token{kind: tokLiteral, text: lit})
			lit = nil
		}
	}
	for i := 0; i < len(f); i++ {
		switch c := f[i]; c {
		case '%':
			t := token{kind: tokPercent, precision: -1}
			j := i + 1
			if j < len(f) && f[j] == '-' {
				t.leftAlign = true
				j++
			}
			if j < len(f) && f[j] == '0' {
				t.zeroPad = true
				j++
			}
			for j < len(f) && f[j] >= '0' && f[j] <= '9' {
				t.width = t.width*10 + int(f[j]-'0')
				j++
			}
			if j < len(f) && f[j] == '.' {
				j++
				t.precision = 0
				for j < len(f) && f[j] >= '0' && f[j] <= '9' {
					t.precision = t.precision*10 + int(f[j]-'0')
					j++
				}
			}
			if j >= len(f) {
				return nil, usagef("-F %q: incomplete %% sequence at the end", f)
			}
			t.conv = f[j]
			if bytes.IndexByte([]byte(percentConvs), t.conv) < 0 {
				return nil, usagef("-F %q: invalid format specifier %%%c", f, t.conv)
			}
			if t.width > 65535 || t.precision > 65535 {
				return nil, usagef("-F %q: field width or precision above 65535", f)
			}
			flush()
			toks = append(toks, t)
			i = j
		case '@':
			if i+1 >= len(f) {
				return nil, usagef("-F %q: incomplete @ sequence at the end", f)
			}
			i++
			if f[i] == '@' {
				lit = append(lit, '@')
				continue
			}
			flush()
			toks = append(toks, token{kind: tokTime, conv: f[i]})
		case '\\':
			if i+1 >= len(f) {
				return nil, usagef("-F %q: incomplete \\ escape at the end", f)
			}
			i++
			e, ok := map[byte]byte{'\\': '\\', '0': 0, 'a': '\a', 'e': 0x1b, 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[f[i]]
			if !ok {
				return nil, usagef("-F %q: invalid escape \\%c (want \\\\ \\0 \\a \\e \\n \\r \\t \\v)", f, f[i])
			}
			lit = append(lit, e)
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return toks, nil
}

// line returns what is printed for m, received at now.
func (p *printer) line(m *mqttkeep.Message, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	var err error
	switch {
	case p.format != nil:
		err = p.formatted(&b, m, now)
		if p.eol {
			b.WriteByte('\n')
		}
	case p.verbose:
		if len(m.Payload) > 0 {
			b.WriteString(m.Topic)
			b.WriteByte(' ')
			b.Write(m.Payload)
			if p.eol {
				b.WriteByte('\n')
			}
		} else if p.eol {
			b.WriteString(m.Topic + " (null)\n")
		}
	default:
		// mosquitto_sub prints nothing at all for an empty payload.
		if len(m.Payload) > 0 {
			b.Write(m.Payload)
			if p.eol {
				b.WriteByte('\n')
			}
		}
	}
	return b.Bytes(), err
}

// formatted writes m by the -F format. An error (a %J payload that is not
// JSON) is reported by the caller; the rest of the line is still written,
// as mosquitto_sub does.
func (p *printer) formatted(b *bytes.Buffer, m *mqttkeep.Message, now time.Time) error {
	var firstErr error
	for _, t := range p.format {
		switch t.kind {
		case tokLiteral:
			b.Write(t.text)
		case tokTime:
			if t.conv == 'N' {
				fmt.Fprintf(b, "%09d", now.Nanosecond())
			} else {
				b.WriteString(strftime(t.conv, now))
			}
		case tokPercent:
			if err := p.percent(b, t, m, now); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (p *printer) percent(b *bytes.Buffer, t token, m *mqttkeep.Message, now time.Time) error {
	pad := byte(' ')
	if t.zeroPad {
		pad = '0'
	}
	switch t.conv {
	case '%':
		b.WriteByte('%')
	case 'A':
		// The library resolves topic aliases (and announces Topic Alias
		// Maximum 0 by default): a message never shows one.
		blank(b, pad, t.width)
	case 'C':
		if m.ContentType != "" {
			str(b, m.ContentType, t)
		} else {
			blank(b, ' ', t.width)
		}
	case 'D':
		b.Write(m.CorrelationData)
	case 'E':
		if m.MessageExpiry > 0 {
			intField(b, int64(m.MessageExpiry/time.Second), t)
		} else {
			blank(b, pad, t.width)
		}
	case 'F':
		if m.PayloadUTF8 {
			intField(b, 1, t)
		} else {
			blank(b, pad, t.width)
		}
	case 'I':
		str(b, now.Format("2006-01-02T15:04:05-0700"), t)
	case 'j', 'J':
		return jsonMessage(b, m, now, t.conv == 'j', p.pretty)
	case 'l':
		intField(b, int64(len(m.Payload)), t)
	case 'm':
		intField(b, int64(m.PacketID), t) // 0 for QoS 0, as mosquitto_sub prints
	case 'P':
		for i, u := range m.UserProperties {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(u.Key + ":" + u.Value)
		}
	case 'p':
		payloadField(b, m.Payload, 0, t, pad)
	case 'q':
		b.WriteByte('0' + byte(m.QoS))
	case 'R':
		if m.ResponseTopic != "" {
			str(b, m.ResponseTopic, t)
		}
	case 'r':
		if m.Retain {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	case 'S':
		if len(m.SubscriptionIDs) > 0 {
			intField(b, int64(m.SubscriptionIDs[0]), t)
		} else {
			blank(b, pad, t.width)
		}
	case 't':
		str(b, m.Topic, t)
	case 'U':
		fmt.Fprintf(b, "%d.%09d", now.Unix(), now.Nanosecond())
	case 'x':
		payloadField(b, m.Payload, 1, t, pad)
	case 'X':
		payloadField(b, m.Payload, 2, t, pad)
	}
	return nil
}

// blank writes width pad characters: a field that is not present.
func blank(b *bytes.Buffer, pad byte, width int) {
	b.Write(bytes.Repeat([]byte{pad}, width))
}

// intField writes n as C's printf does with mosquitto's flags.
func intField(b *bytes.Buffer, n int64, t token) {
	s := strconv.FormatInt(n, 10)
	switch {
	case t.width == 0 || len(s) >= t.width:
		b.WriteString(s)
	case t.leftAlign:
		b.WriteString(s)
		blank(b, ' ', t.width-len(s))
	case t.zeroPad:
		if n < 0 {
			b.WriteByte('-')
			s = s[1:]
			blank(b, '0', t.width-len(s)-1)
		} else {
			blank(b, '0', t.width-len(s))
		}
		b.WriteString(s)
	default:
		blank(b, ' ', t.width-len(s))
		b.WriteString(s)
	}
}

// str writes s as printf's %*.*s does: at most precision bytes, padded
// with spaces to width.
func str(b *bytes.Buffer, s string, t token) {
	if t.precision >= 0 && len(s) > t.precision {
		s = s[:t.precision]
	}
	pad := t.width - len(s)
	if pad > 0 && !t.leftAlign {
		blank(b, ' ', pad)
	}
	b.WriteString(s)
	if pad > 0 && t.leftAlign {
		blank(b, ' ', pad)
	}
}

// payloadField writes the payload raw (hex 0) or in lower (1) or upper (2)
// case hex with mosquitto_sub 2.0's padding rules, quirks included: a
// width also cuts the payload, to width bytes, and for hex to half as many.
func payloadField(b *bytes.Buffer, payload []byte, hex int, t token, pad byte) {
	n := len(payload)
	var padlen int
	if t.width > 0 {
		n = min(n, t.width)
		if hex > 0 {
			n /= 2
			padlen = t.width - n*2
		} else {
			padlen = t.width - n
		}
	} else {
		padlen = t.width - n
	}
	if !t.leftAlign && padlen > 0 {
		blank(b, pad, padlen)
	}
	switch hex {
	case 0:
		b.Write(payload[:n])
	case 1:
		fmt.Fprintf(b, "%x", payload[:n])
	case 2:
		fmt.Fprintf(b, "%X", payload[:n])
	}
	if t.leftAlign {
		blank(b, ' ', max(padlen, -padlen)) // printf("%*s", padlen, "") pads |padlen|
	}
}
