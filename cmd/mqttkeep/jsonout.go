package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mqttkeep/mqttkeep"
)

// jnode is a JSON value that keeps its object keys in order (and allows
// them twice, as mosquitto_sub's "user-properties" object does), printed
// the way cJSON prints, which is what mosquitto_sub's %j and %J use.
type jnode struct {
	kind byte   // 's' string, 'n' number (text), 'l' literal (true, false, null), 'o' object, 'a' array
	text string // 's', 'n', 'l'
	keys []string
	vals []*jnode
}

func jstr(s string) *jnode { return &jnode{kind: 's', text: s} }
func jint(n int64) *jnode  { return &jnode{kind: 'n', text: strconv.FormatInt(n, 10)} }
func jlit(s string) *jnode { return &jnode{kind: 'l', text: s} }
func jobj() *jnode         { return &jnode{kind: 'o'} }
func (j *jnode) set(k string, v *jnode) *jnode {
	j.keys, j.vals = append(j.keys, k), append(j.vals, v)
	return j
}

// jsonMessage writes mosquitto_sub's %j (escaped payload) or %J (payload
// that must itself be JSON) for m: tst, topic, qos, retain, payloadlen,
// mid (the packet identifier, QoS 1/2 only), properties, payload. A payload that is not UTF-8 is an
// array of byte values (mosquitto 2.0.11 cuts it at the first NUL).
func jsonMessage(b *bytes.Buffer, m *mqttkeep.Message, now time.Time, escaped, pretty bool) error {
	tst := now.Format("2006-01-02T15:04:05") + fmt.Sprintf(".%06dZ", now.Nanosecond()/1000) + now.Format("-0700")
	root := jobj().set("tst", jstr(tst)).set("topic", jstr(m.Topic)).
		set("qos", jint(int64(m.QoS))).set("retain", jint(boolInt(m.Retain))).
		set("payloadlen", jint(int64(len(m.Payload))))
	if m.QoS > 0 {
		root.set("mid", jint(int64(m.PacketID)))
	}
	if p := jsonProperties(m); p != nil {
		root.set("properties", p)
	}
	var payload *jnode
	switch {
	case len(m.Payload) == 0:
		payload = jlit("null")
	case escaped && utf8.Valid(m.Payload):
		payload = jstr(string(m.Payload))
	case escaped:
		payload = &jnode{kind: 'a'}
		for _, c := range m.Payload {
			payload.vals = append(payload.vals, jint(int64(c)))
		}
	default:
		var err error
		if payload, err = parseJSON(m.Payload); err != nil {
			return fmt.Errorf("message payload is not valid JSON on topic %s", m.Topic)
		}
	}
	root.set("payload", payload)
	writeJSON(b, root, pretty, 0)
	return nil
}

// jsonProperties is the "properties" object, nil when there are none.
// mosquitto lists them in the order of the packet; the library hands them
// over as fields, so they come in one fixed order here.
func jsonProperties(m *mqttkeep.Message) *jnode {
	p := jobj()
	if len(m.UserProperties) > 0 {
		u := jobj()
		for _, up := range m.UserProperties {
			u.set(up.Key, jstr(up.Value))
		}
		p.set("user-properties", u)
	}
	if m.ContentType != "" {
		p.set("content-type", jstr(m.ContentType))
	}
	if m.ResponseTopic != "" {
		p.set("response-topic", jstr(m.ResponseTopic))
	}
	if m.CorrelationData != nil {
		p.set("correlation-data", jstr(string(m.CorrelationData)))
	}
	if m.PayloadUTF8 {
		p.set("payload-format-indicator", jint(1))
	}
	if m.MessageExpiry > 0 {
		p.set("message-expiry-interval", jint(int64(m.MessageExpiry/time.Second)))
	}
	if len(m.SubscriptionIDs) > 0 {
		p.set("subscription-identifier", jint(int64(m.SubscriptionIDs[0])))
	}
	if len(p.keys) == 0 {
		return nil
	}
	return p
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// parseJSON parses one whole JSON value, keeping object keys in order.
func parseJSON(data []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder) (*jnode, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := t.(type) {
	case json.Delim:
		n := &jnode{kind: 'a'}
		if v == '{' {
			n.kind = 'o'
		}
		for dec.More() {
			if n.kind == 'o' {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, kt.(string))
			}
			c, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return jstr(v), nil
	case json.Number:
		return &jnode{kind: 'n', text: cjsonNumber(v)}, nil
	case bool:
		return jlit(strconv.FormatBool(v)), nil
	case nil:
		return jlit("null"), nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", t)
}

// cjsonNumber prints a number as cJSON does: an integer in C int range
// as one, else %1.15g (or %1.17g if that does not read back the same).
func cjsonNumber(n json.Number) string {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "null"
	}
	if f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
		return strconv.FormatInt(int64(f), 10)
	}
	s := strconv.FormatFloat(f, 'g', 15, 64)
	if g, _ := strconv.ParseFloat(s, 64); g != f {
		s = strconv.FormatFloat(f, 'g', 17, 64)
	}
	return s
}

// writeJSON prints n as cJSON_PrintUnformatted, or cJSON_Print with
// pretty (tabs, one member per line, arrays on one line).
func writeJSON(b *bytes.Buffer, n *jnode, pretty bool, depth int) {
	switch n.kind {
	case 's':
		writeJSONString(b, n.text)
	case 'n', 'l':
		b.WriteString(n.text)
	case 'a':
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
				if pretty {
					b.WriteByte(' ')
				}
			}
			writeJSON(b, v, pretty, depth)
		}
		b.WriteByte(']')
	case 'o':
		b.WriteByte('{')
		if pretty {
			b.WriteByte('\n')
		}
		for i, k := range n.keys {
			if pretty {
				b.WriteString(strings.Repeat("\t", depth+1))
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			if pretty {
				b.WriteByte('\t')
			}
			writeJSON(b, n.vals[i], pretty, depth+1)
			if i < len(n.keys)-1 {
				b.WriteByte(',')
			}
			if pretty {
				b.WriteByte('\n')
			}
		}
		if pretty {
			b.WriteString(strings.Repeat("\t", depth))
		}
		b.WriteByte('}')
	}
}

// writeJSONString quotes s as cJSON does: \" \\ \b \f \n \r \t, other
// control characters as \u00XX, everything else as it is.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}
