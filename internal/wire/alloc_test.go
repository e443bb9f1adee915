package wire

import (
	"bytes"
	"testing"
)

// The packets of the message path encode into a caller's buffer with no
// allocation, whether the PUBLISH carries properties or not.
func TestEncodeAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	for _, c := range benchCases {
		p := benchPublish(c.qos, c.props)
		checks := map[string]func() error{
			"PublishSize": func() error { _, err := PublishSize(c.v, &p); return err },
			"AppendPublish": func() error {
				_, err := AppendPublish(buf[:0], c.v, &p)
				return err
			},
			"AppendCheckedPublish": func() error {
				_, err := AppendCheckedPublish(buf[:0], c.v, &p)
				return err
			},
		}
		for name, f := range checks {
			var err error
			if n := testing.AllocsPerRun(100, func() { err = f() }); n != 0 {
				t.Errorf("%s of a %s PUBLISH: %v allocations, want 0", name, c.name, n)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range ackCases {
		for _, reason := range []byte{0, 0x10, 0x80} {
			if c.v == V311 && reason != 0 {
				continue // MQTT 5 only
			}
			a := Ack{Type: c.typ, PacketID: 4242, Reason: reason}
			if reason == 0x80 {
				a.Props.Mark(PropReasonString)
				a.Props.ReasonString = "refused"
			}
			var err error
			if n := testing.AllocsPerRun(100, func() { _, err = AppendAck(buf[:0], c.v, &a) }); n != 0 {
				t.Errorf("AppendAck %s reason 0x%02X: %v allocations, want 0", c.name, reason, n)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { buf = append(buf[:0], Pingreq...) }); n != 0 {
		t.Errorf("PINGREQ: %v allocations, want 0", n)
	}
}

// Decoding a PUBLISH allocates once for its topic and string properties
// together, and once for the slice of its user properties; the payload
// and correlation data alias the body. The acknowledgements and PINGRESP
// decode with no allocation.
func TestDecodeAllocs(t *testing.T) {
	for _, c := range benchCases {
		p := benchPublish(c.qos, c.props)
		enc, err := AppendPublish(nil, c.v, &p)
		if err != nil {
			t.Fatal(err)
		}
		_, flags, body, err := NewReader(bytes.NewReader(enc), 0).Next()
		if err != nil {
			t.Fatal(err)
		}
		want := 1.0 // the topic
		if c.props {
			want = 2 // the topic with the content type and user property strings; the user property slice
		}
		var got Publish
		if n := testing.AllocsPerRun(100, func() { err = DecodePublish(c.v, flags, body, &got) }); n != want {
			t.Errorf("DecodePublish of a %s PUBLISH: %v allocations, want %v", c.name, n, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.Topic != p.Topic || got.Props.ContentType != p.Props.ContentType || len(got.Props.User) != len(p.Props.User) {
			t.Fatalf("DecodePublish of a %s PUBLISH: got %+v", c.name, got)
		}
	}
	for _, c := range ackCases {
		ack := []byte{0x10, 0x92, 0x10} // packet identifier 4242, reason code 0x10
		if c.v == V311 {
			ack = ack[:2]
		}
		var err error
		if n := testing.AllocsPerRun(100, func() { _, err = DecodeAck(c.v, c.typ, ack) }); n != 0 {
			t.Errorf("DecodeAck %s: %v allocations, want 0", c.name, n)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []Version{V5, V311} {
		var err error
		if n := testing.AllocsPerRun(100, func() { err = CheckPingresp(v, nil) }); n != 0 {
			t.Errorf("CheckPingresp %s: %v allocations, want 0", v, n)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
