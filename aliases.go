package mqttkeep

// aliasTable assigns outbound topic aliases on one link, within the
// broker's Topic Alias Maximum: the first topics published get an alias
// each, in order, and keep it for the life of the connection (aliases do
// not outlive a connection, [MQTT-3.3.2-7]). Guarded by s.mu.
type aliasTable struct {
	max    uint16 // the broker's Topic Alias Maximum; 0: no aliases
	byName map[string]uint16
}

// lookup returns the alias for topic (0: none) and whether this is its
// first use on the connection, when the PUBLISH must carry the topic too.
func (t *aliasTable) lookup(topic string) (alias uint16, first bool) {
	if t.max == 0 {
		return 0, false
	}
	if a, ok := t.byName[topic]; ok {
		return a, false
	}
	if len(t.byName) >= int(t.max) {
		return 0, false
	}
	if t.byName == nil {
		t.byName = make(map[string]uint16)
	}
	a := uint16(len(t.byName) + 1)
	t.byName[topic] = a
	return a, true
}
