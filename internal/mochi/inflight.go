// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2023 mochi-mqtt, mochi-co
// SPDX-FileContributor: mochi-co

package mqtt

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// Inflight is a map of InflightMessage keyed on packet id.
type Inflight struct {
	sync.RWMutex
	internal            map[uint16]packets.Packet // internal contains the inflight packets
	receiveQuota        int32                     // remaining inbound qos quota for flow control
	sendQuota           int32                     // remaining outbound qos quota for flow control
	maximumReceiveQuota int32                     // maximum allowed receive quota
	maximumSendQuota    int32                     // maximum allowed send quota
	held                int32                     // mqttkeep patch: how many packets are held back for the send quota (Expiry < 0); changed under the lock
	heldQ               []heldRef                 // mqttkeep patch: the held packets in the order they were held, with stale entries
	heldSeq             map[uint16]uint64         // mqttkeep patch: the heldQ entry of each held packet
	seq                 uint64                    // mqttkeep patch: the last heldRef.seq or order value
	order               map[uint16]uint64         // mqttkeep patch: when each packet's flow began, for GetAll
}

// heldRef (mqttkeep patch) is a heldQ entry: stale once heldSeq[id] != seq.
type heldRef struct {
	id  uint16
	seq uint64
}

// NewInflights returns a new instance of an Inflight packets map.
func NewInflights() *Inflight {
	return &Inflight{
		internal: map[uint16]packets.Packet{},
	}
}

// Set adds or updates an inflight packet by packet id.
func (i *Inflight) Set(m packets.Packet) bool {
	i.Lock()
	defer i.Unlock()
	return i.set(m)
}

// set is Set with the lock held (mqttkeep patch: it queues held packets).
func (i *Inflight) set(m packets.Packet) bool {
	_, ok := i.internal[m.PacketID]
	i.internal[m.PacketID] = m
	if !ok { // mqttkeep patch: a new flow, after every one in the map
		if i.order == nil {
			i.order = map[uint16]uint64{}
		}
		i.seq++
		i.order[m.PacketID] = i.seq
	}
	i.unhold(m.PacketID)
	if m.Expiry < 0 {
		if i.heldSeq == nil {
			i.heldSeq = map[uint16]uint64{}
		}
		i.seq++
		i.heldSeq[m.PacketID] = i.seq
		i.heldQ = append(i.heldQ, heldRef{m.PacketID, i.seq})
		atomic.AddInt32(&i.held, 1)
	}
	return !ok
}

// unhold (mqttkeep patch) forgets that packet id was held, with the lock
// held; its heldQ entry goes stale.
func (i *Inflight) unhold(id uint16) {
	if _, ok := i.heldSeq[id]; ok {
		delete(i.heldSeq, id)
		atomic.AddInt32(&i.held, -1)
	}
}

// nextHeld (mqttkeep patch) returns the packet held longest, with the lock
// held, dropping stale heldQ entries on the way.
func (i *Inflight) nextHeld() (packets.Packet, bool) {
	for len(i.heldQ) > 0 {
		r := i.heldQ[0]
		if seq, ok := i.heldSeq[r.id]; ok && seq == r.seq {
			return i.internal[r.id], true
		}
		i.heldQ = i.heldQ[1:]
	}
	return packets.Packet{}, false
}

// quotaFree (mqttkeep patch) reports whether a QoS 1/2 message may be sent
// now: the client announced no Receive Maximum (mochi then keeps no send
// quota), or its quota is not spent.
func (i *Inflight) quotaFree() bool {
	return atomic.LoadInt32(&i.maximumSendQuota) == 0 || atomic.LoadInt32(&i.sendQuota) > 0
}

// SetOutbound (mqttkeep patch) adds the outbound QoS 1/2 publish m and
// takes a unit of send quota for it, unless the quota is spent or earlier
// packets are held back already (m must not overtake them): then m is held
// back (Expiry -1) for Client.sendHeldInflights. Upstream took the quota
// outside the lock, so concurrent publishers could overdraw it, and let a
// new message overtake held ones. It returns whether m was new and whether
// it was held.
func (i *Inflight) SetOutbound(m packets.Packet) (added, held bool) {
	i.Lock()
	defer i.Unlock()
	held = atomic.LoadInt32(&i.held) > 0 || !i.quotaFree()
	if held {
		m.Expiry = -1
	}
	added = i.set(m)
	if added && !held {
		i.DecreaseSendQuota()
	}
	return added, held
}

// Get returns an inflight packet by packet id.
func (i *Inflight) Get(id uint16) (packets.Packet, bool) {
	i.RLock()
	defer i.RUnlock()

	if m, ok := i.internal[id]; ok {
		return m, true
	}

	return packets.Packet{}, false
}

// Len returns the size of the inflight messages map.
func (i *Inflight) Len() int {
	i.RLock()
	defer i.RUnlock()
	return len(i.internal)
}

// Clone returns a new instance of Inflight with the same message data.
// This is used when transferring inflights from a taken-over session.
func (i *Inflight) Clone() *Inflight {
	c := NewInflights()
	i.RLock()
	defer i.RUnlock()
	for k, v := range i.internal {
		c.internal[k] = v
	}
	c.held, c.heldQ, c.seq = atomic.LoadInt32(&i.held), slices.Clone(i.heldQ), i.seq // mqttkeep patch
	c.heldSeq, c.order = maps.Clone(i.heldSeq), maps.Clone(i.order)
	return c
}

// GetAll returns all the inflight messages.
func (i *Inflight) GetAll(immediate bool) []packets.Packet {
	i.RLock()
	defer i.RUnlock()

	m := []packets.Packet{}
	for _, v := range i.internal {
		if !immediate || (immediate && v.Expiry < 0) {
			m = append(m, v)
		}
	}

	// mqttkeep patch: in the order the flows began. Upstream sorted by the
	// low 16 bits of the creation time in seconds, with an unstable sort:
	// a session resumed after a few messages in one second got them back
	// in any order, against [MQTT-4.6.0-1].
	sort.Slice(m, func(a, b int) bool {
		return i.order[m[a].PacketID] < i.order[m[b].PacketID]
	})

	return m
}

// NextImmediate returns the next inflight packet which is indicated to be sent immediately.
// This typically occurs when the quota has been exhausted, and we need to wait until new quota
// is free to continue sending.
func (i *Inflight) NextImmediate() (packets.Packet, bool) {
	// mqttkeep patch: GetAll takes the read lock itself. Taking it here as
	// well read-locked twice, which deadlocks when a writer (Set, from
	// another client's publish) queues in between.
	m := i.GetAll(true)
	if len(m) > 0 {
		return m[0], true
	}

	return packets.Packet{}, false
}

// Delete removes an in-flight message from the map. Returns true if the message existed.
func (i *Inflight) Delete(id uint16) bool {
	i.Lock()
	defer i.Unlock()

	_, ok := i.internal[id]
	delete(i.internal, id)
	i.unhold(id)        // mqttkeep patch
	delete(i.order, id) // mqttkeep patch

	return ok
}

// TakeRecieveQuota reduces the receive quota by 1.
func (i *Inflight) DecreaseReceiveQuota() {
	if atomic.LoadInt32(&i.receiveQuota) > 0 {
		atomic.AddInt32(&i.receiveQuota, -1)
	}
}

// TakeRecieveQuota increases the receive quota by 1.
func (i *Inflight) IncreaseReceiveQuota() {
	if atomic.LoadInt32(&i.receiveQuota) < atomic.LoadInt32(&i.maximumReceiveQuota) {
		atomic.AddInt32(&i.receiveQuota, 1)
	}
}

// ResetReceiveQuota resets the receive quota to the maximum allowed value.
func (i *Inflight) ResetReceiveQuota(n int32) {
	atomic.StoreInt32(&i.receiveQuota, n)
	atomic.StoreInt32(&i.maximumReceiveQuota, n)
}

// DecreaseSendQuota reduces the send quota by 1.
func (i *Inflight) DecreaseSendQuota() {
	if atomic.LoadInt32(&i.sendQuota) > 0 {
		atomic.AddInt32(&i.sendQuota, -1)
	}
}

// IncreaseSendQuota increases the send quota by 1.
func (i *Inflight) IncreaseSendQuota() {
	if atomic.LoadInt32(&i.sendQuota) < atomic.LoadInt32(&i.maximumSendQuota) {
		atomic.AddInt32(&i.sendQuota, 1)
	}
}

// ResetSendQuota resets the send quota to the maximum allowed value.
func (i *Inflight) ResetSendQuota(n int32) {
	atomic.StoreInt32(&i.sendQuota, n)
	atomic.StoreInt32(&i.maximumSendQuota, n)
}
