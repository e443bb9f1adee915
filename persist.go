package mqttkeep

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// What a client keeps in its Store (see [WithStore]). Keys carry their
// kind in the top byte:
//
//	0x00 << 56           meta: "mqttkeep1" and the client ID
//	0x01 << 56 | seq     an accepted outbound message: a version byte,
//	                     then its PUBLISH as first sent (packet
//	                     identifier set, DUP clear)
//	0x02 << 56 | seq     that message is past PUBREC (PUBREL due)
//	0x03 << 56 | id      an inbound QoS 2 message handled and PUBREC sent,
//	                     awaiting PUBREL
//
// Accepting a message is a durable step: PublishAsync returns once it is
// on disk. Marking a QoS 2 message past PUBREC is durable before its
// PUBREL is written, and recording an inbound QoS 2 message is durable
// before its PUBREC is: then no crash of the process can make a QoS 2
// message be delivered twice. Removing completed messages is not durable
// (a crash may make the broker get them again: at least once).
const (
	keyMeta     uint64 = 0
	keyOut      uint64 = 1 << 56
	keyReleased uint64 = 2 << 56
	keyInbound  uint64 = 3 << 56
	keyKind            = 0xFF << 56
	metaMagic          = "mqttkeep1\x00"
	recordV1           = 1
)

// persistOp is one step for the store, run by the persister in the order
// queued; done, if set, runs under s.mu once the step was applied.
type persistOp struct {
	puts    []Record
	deletes []uint64
	durable bool
	done    func(err error)
}

// persister runs the session's store steps on one goroutine that exists
// while steps wait, merging every step queued meanwhile into one Apply:
// concurrent publishes share one sync. Guarded by s.mu.
type persister struct {
	queue   []persistOp
	running bool
	idle    chan struct{} // closed when the goroutine ends, for Close; nil while none runs
}

// persistLocked queues op. s.mu held.
func (s *session) persistLocked(op persistOp) {
	p := &s.persist
	p.queue = append(p.queue, op)
	if !p.running {
		p.running = true
		p.idle = make(chan struct{})
		go s.runPersister(p.idle)
	}
}

// runPersister is the persister goroutine.
func (s *session) runPersister(idle chan struct{}) {
	defer close(idle)
	store := s.c.cfg.store
	for {
		s.mu.Lock()
		batch := s.persist.queue
		s.persist.queue = nil
		if len(batch) == 0 {
			s.persist.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		var puts []Record
		var deletes []uint64
		durable := false
		for _, op := range batch {
			puts = append(puts, op.puts...)
			deletes = append(deletes, op.deletes...)
			durable = durable || op.durable
		}
		// A merged step's puts come before its deletes; a put queued after
		// a delete of the same key must win, so split there.
		err := applyInOrder(store, batch, puts, deletes, durable)
		s.mu.Lock()
		for _, op := range batch {
			if op.done != nil {
				op.done(err)
			}
		}
		s.mu.Unlock()
		if err != nil {
			s.c.cfg.logger.Error("mqttkeep: store step failed", "err", err)
		}
	}
}

// applyInOrder applies the batch as one step unless a put follows a
// delete of the same key, in which case each op is its own step.
func applyInOrder(store Store, batch []persistOp, puts []Record, deletes []uint64, durable bool) error {
	deleted := make(map[uint64]bool, len(deletes))
	conflict := false
	for _, op := range batch {
		for _, r := range op.puts {
			if deleted[r.Key] {
				conflict = true
			}
		}
		for _, k := range op.deletes {
			deleted[k] = true
		}
	}
	if !conflict {
		return store.Apply(puts, deletes, durable)
	}
	var first error
	for i, op := range batch {
		last := i == len(batch)-1
		if err := store.Apply(op.puts, op.deletes, durable && last); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// record returns the store record of an accepted outbound message.
func outRecord(o *outMsg) (Record, error) {
	b, err := wire.AppendCheckedPublish([]byte{recordV1}, wire.V5, &o.pub)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: keyOut | o.seq, Value: b}, nil
}

// load reads the store into the session, before the first connection:
// accepted messages go back to the queue in the order accepted (each as
// possibly sent: DUP on a resumed session), messages past PUBREC to the
// in-flight set, and handled inbound QoS 2 identifiers to the released
// set. It checks that the store belongs to this client.
func (c *Client) load() error {
	store := c.cfg.store
	s := c.session
	var metaID *string
	var outs []*outMsg
	released := map[uint64]bool{}
	inbound := map[uint16]struct{}{}
	err := store.Load(func(key uint64, value []byte) error {
		switch key & keyKind {
		case keyMeta:
			if key == keyMeta {
				if !bytes.HasPrefix(value, []byte(metaMagic)) {
					return fmt.Errorf("not a store of mqttkeep")
				}
				id := string(value[len(metaMagic):])
				metaID = &id
			}
		case keyOut:
			o, err := decodeOutRecord(key&^keyKind, value)
			if err != nil {
				return fmt.Errorf("record %#x: %w", key, err)
			}
			outs = append(outs, o)
		case keyReleased:
			released[key&^keyKind] = true
		case keyInbound:
			inbound[uint16(key)] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mqttkeep: loading the store: %w", err)
	}
	c.mu.Lock()
	id := c.clientID
	c.mu.Unlock()
	if metaID != nil && *metaID != id && id != "" && *metaID != "" {
		return fmt.Errorf("%w WithStore: the store holds the session of client %q, not %q", ErrInvalidOption, *metaID, id)
	}
	if metaID != nil && id == "" {
		c.mu.Lock()
		c.clientID = *metaID // the broker assigned it to an earlier process
		c.mu.Unlock()
	}
	slices.SortFunc(outs, func(a, b *outMsg) int { return cmpUint(a.seq, b.seq) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outs {
		o.sent, o.owned, o.persisted, o.stored = true, true, true, true
		s.seq = max(s.seq, o.seq)
		if released[o.seq] && o.pub.QoS == 2 {
			o.state = outReleased
			o.pub.Payload = nil
			o.wsize = wire.AckSize
			if s.inflight == nil {
				s.inflight = make(map[uint16]*outMsg)
			}
			s.inflight[o.pub.PacketID] = o
			s.inflightBytes += o.wsize
			continue
		}
		if o.pub.QoS > 0 {
			s.reserveIDLocked(o.pub.PacketID, o)
		}
		s.enqueueLocked(o)
	}
	if len(inbound) > 0 {
		s.released = inbound
	}
	s.c.stats.messagesRestored.Add(uint64(len(outs)))
	return nil
}

// metaRecord is the store's meta record for client ID id.
func metaRecord(id string) Record {
	return Record{Key: keyMeta, Value: append([]byte(metaMagic), id...)}
}

// decodeOutRecord reads an outbound message record.
func decodeOutRecord(seq uint64, value []byte) (*outMsg, error) {
	if len(value) < 1 || value[0] != recordV1 {
		return nil, fmt.Errorf("unknown record version")
	}
	r := wire.NewReader(bytes.NewReader(value[1:]), 0)
	typ, flags, body, err := r.Next()
	if err != nil {
		return nil, err
	}
	if typ != wire.PUBLISH {
		return nil, fmt.Errorf("a %s, not a PUBLISH", wire.TypeName(typ))
	}
	o := &outMsg{seq: seq}
	if err := wire.DecodePublish(wire.V5, flags, body, &o.pub); err != nil {
		return nil, err
	}
	o.wsize = len(value) - 1
	o.size = messageSize(&o.pub)
	return o, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
