package wire

import (
	"bytes"
	"testing"
)

// benchPublish is a PUBLISH of a sensor reading, with the properties
// typical of real use when props is set.
func benchPublish(qos byte, props bool) Publish {
	p := Publish{Topic: "sensors/building-7/floor-3/room-12/temperature", Payload: bytes.Repeat([]byte{'x'}, 64), QoS: qos}
	if qos > 0 {
		p.PacketID = 4242
	}
	if props {
		p.Props.Mark(PropContentType)
		p.Props.ContentType = "application/json"
		p.Props.Mark(PropUser)
		p.Props.User = []UserProperty{{"source", "bench"}}
		p.Props.Mark(PropMessageExpiry)
		p.Props.MessageExpiry = 3600
	}
	return p
}

var benchCases = []struct {
	name  string
	qos   byte
	props bool
}{{"qos0", 0, false}, {"qos0-props", 0, true}, {"qos1", 1, false}, {"qos1-props", 1, true}}

func BenchmarkEncodePublish(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPublish(c.qos, c.props)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendPublish(buf[:0], &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The client's path: the size (and check) at acceptance, the append
// when written.
func BenchmarkSizeAndEncodePublish(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPublish(c.qos, c.props)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := PublishSize(&p); err != nil {
					b.Fatal(err)
				}
				var err error
				if buf, err = AppendCheckedPublish(buf[:0], &p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPublish(c.qos, c.props)
			enc, err := AppendPublish(nil, &p)
			if err != nil {
				b.Fatal(err)
			}
			_, flags, body, err := NewReader(bytes.NewReader(enc), 0).Next()
			if err != nil {
				b.Fatal(err)
			}
			var got Publish
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodePublish(flags, body, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeAck(b *testing.B) {
	for _, typ := range []byte{PUBACK, PUBREC, PUBREL, PUBCOMP} {
		b.Run(TypeName(typ), func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendAck(buf[:0], &Ack{Type: typ, PacketID: 4242}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("PINGREQ", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], Pingreq...)
		}
	})
}

func BenchmarkDecodeAck(b *testing.B) {
	for _, typ := range []byte{PUBACK, PUBREC, PUBREL, PUBCOMP} {
		b.Run(TypeName(typ), func(b *testing.B) {
			body := []byte{0x10, 0x92}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeAck(typ, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("PINGRESP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := CheckPingresp(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
