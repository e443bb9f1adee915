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

// benchCases are the PUBLISH packets of the benchmarks: MQTT 5 with and
// without properties, MQTT 3.1.1 (which has none).
var benchCases = []struct {
	name  string
	v     Version
	qos   byte
	props bool
}{
	{"qos0", V5, 0, false}, {"qos0-props", V5, 0, true}, {"qos1", V5, 1, false}, {"qos1-props", V5, 1, true},
	{"v311-qos0", V311, 0, false}, {"v311-qos1", V311, 1, false},
}

// ackCases are the acknowledgements of the benchmarks, in both versions.
var ackCases = []struct {
	name string
	v    Version
	typ  byte
}{
	{"PUBACK", V5, PUBACK}, {"PUBREC", V5, PUBREC}, {"PUBREL", V5, PUBREL}, {"PUBCOMP", V5, PUBCOMP},
	{"v311-PUBACK", V311, PUBACK}, {"v311-PUBREC", V311, PUBREC}, {"v311-PUBREL", V311, PUBREL}, {"v311-PUBCOMP", V311, PUBCOMP},
}

func BenchmarkEncodePublish(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			p := benchPublish(c.qos, c.props)
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendPublish(buf[:0], c.v, &p); err != nil {
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
				if _, err := PublishSize(c.v, &p); err != nil {
					b.Fatal(err)
				}
				var err error
				if buf, err = AppendCheckedPublish(buf[:0], c.v, &p); err != nil {
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
			enc, err := AppendPublish(nil, c.v, &p)
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
				if err := DecodePublish(c.v, flags, body, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeAck(b *testing.B) {
	for _, c := range ackCases {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 64)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = AppendAck(buf[:0], c.v, &Ack{Type: c.typ, PacketID: 4242}); err != nil {
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
	for _, c := range ackCases {
		b.Run(c.name, func(b *testing.B) {
			body := []byte{0x10, 0x92}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeAck(c.v, c.typ, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("PINGRESP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := CheckPingresp(V5, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// repeatReader serves chunk forever, one chunk per Read.
type repeatReader struct{ chunk []byte }

func (r repeatReader) Read(p []byte) (int, error) { return copy(p, r.chunk), nil }

// BenchmarkReadAck reads PUBACKs from a stream that brings 25 per read.
func BenchmarkReadAck(b *testing.B) {
	var chunk []byte
	for i := range 25 {
		chunk = append(chunk, PUBACK<<4, 2, 0, byte(i+1))
	}
	r := NewReader(repeatReader{chunk}, 0)
	defer r.Release()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
