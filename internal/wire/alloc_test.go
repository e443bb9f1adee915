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
			"PublishSize": func() error { _, err := PublishSize(&p); return err },
			"AppendPublish": func() error {
				_, err := AppendPublish(buf[:0], &p)
				return err
			},
			"AppendCheckedPublish": func() error {
				_, err := AppendCheckedPublish(buf[:0], &p)
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
	for _, typ := range []byte{PUBACK, PUBREC, PUBREL, PUBCOMP} {
		for _, reason := range []byte{0, 0x10, 0x80} {
			a := Ack{Type: typ, PacketID: 4242, Reason: reason}
			if reason == 0x80 {
				a.Props.Mark(PropReasonString)
				a.Props.ReasonString = "refused"
			}
			var err error
			if n := testing.AllocsPerRun(100, func() { _, err = AppendAck(buf[:0], &a) }); n != 0 {
				t.Errorf("AppendAck %s reason 0x%02X: %v allocations, want 0", TypeName(typ), reason, n)
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
		enc, err := AppendPublish(nil, &p)
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
		if n := testing.AllocsPerRun(100, func() { err = DecodePublish(flags, body, &got) }); n != want {
			t.Errorf("DecodePublish of a %s PUBLISH: %v allocations, want %v", c.name, n, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.Topic != p.Topic || got.Props.ContentType != p.Props.ContentType || len(got.Props.User) != len(p.Props.User) {
			t.Fatalf("DecodePublish of a %s PUBLISH: got %+v", c.name, got)
		}
	}
	ack := []byte{0x10, 0x92, 0x10} // packet identifier 4242, reason code 0x10
	for _, typ := range []byte{PUBACK, PUBREC, PUBREL, PUBCOMP} {
		var err error
		if n := testing.AllocsPerRun(100, func() { _, err = DecodeAck(typ, ack) }); n != 0 {
			t.Errorf("DecodeAck %s: %v allocations, want 0", TypeName(typ), n)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if n := testing.AllocsPerRun(100, func() { err = CheckPingresp(nil) }); n != 0 {
		t.Errorf("CheckPingresp: %v allocations, want 0", n)
	}
	if err != nil {
		t.Fatal(err)
	}
}
