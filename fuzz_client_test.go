package mqttkeep_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// FuzzBrokerBytes connects a client to a server that accepts it and then
// sends arbitrary bytes: the client must not panic, must not hang, and
// must report why the connection ended with a named error (or the end of
// the stream). Seeds in testdata/fuzz/FuzzBrokerBytes; fuzz longer with
//
//	go test -run '^$' -fuzz FuzzBrokerBytes -fuzztime 5m .
func FuzzBrokerBytes(f *testing.F) {
	f.Add([]byte{0xD0, 0x00, 0xD0, 0x00})                                  // two PINGRESPs
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F})                            // a 256 MiB PUBLISH header
	f.Add([]byte{0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 1, 0, 'x'})           // a QoS 1 PUBLISH
	f.Add([]byte{0x30, 0x08, 0, 0, 3, 0x23, 0, 1, 'h', 'i'})               // an alias never set
	f.Add([]byte{0x40, 0x02, 0, 1, 0x90, 0x03, 0, 1, 0, 0xE0, 0x01, 0x9C}) // acks and a DISCONNECT
	f.Fuzz(func(t *testing.T, data []byte) {
		synctest.Test(t, func(t *testing.T) {
			srv := newScripted(t)
			defer srv.close()
			go func() {
				sc := srv.accept()
				sc.handshake(nil)
				sc.raw(data)
				_ = sc.Close()
			}()
			ev := newEvents()
			c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
				mqttkeep.WithMaxPacketSize(1<<16), mqttkeep.WithSubscription("#", 2, func(*mqttkeep.Message) {}),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
			if err != nil {
				t.Fatal(err)
			}
			// Connect may never see the connected state: the bytes can end
			// the first connection while its subscription is restored.
			start, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
			_ = c.Connect(start)
			cancel()
			e := <-ev.lost
			var rc *mqttkeep.ReasonCodeError
			switch {
			case errors.Is(e.Err, mqttkeep.ErrMalformedPacket), errors.Is(e.Err, mqttkeep.ErrProtocolViolation),
				errors.Is(e.Err, mqttkeep.ErrPacketTooLarge), errors.Is(e.Err, io.EOF), errors.Is(e.Err, io.ErrClosedPipe),
				errors.Is(e.Err, io.ErrUnexpectedEOF), errors.As(e.Err, &rc):
			default:
				t.Fatalf("connection ended with an error of no class: %v", e.Err)
			}
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	})
}
