package wire

import "strings"

// checkTopicName checks the topic name of a PUBLISH or a will: a string
// MQTT can carry, without wildcards ([MQTT-3.3.2-2]), not empty
// ([MQTT-4.7.3-1]) unless aliased (an MQTT 5 Topic Alias stands for it).
func checkTopicName(what, topic string, aliased bool) error {
	wild, err := checkString(what, topic)
	if err != nil {
		return err
	}
	if topic == "" && !aliased {
		return invalid("%s is empty", what)
	}
	if wild {
		return invalid("%s %q contains a wildcard (+ or #)", what, topic)
	}
	return nil
}

// checkFilter checks a topic filter of a SUBSCRIBE or UNSUBSCRIBE: a
// string MQTT can carry, not empty ([MQTT-4.7.3-1]), "#" only as the
// whole last level ([MQTT-4.7.1-2]) and "+" only as a whole level
// ([MQTT-4.7.1-3]).
func checkFilter(f string) error {
	if err := CheckString("topic filter", f); err != nil {
		return err
	}
	if f == "" {
		return invalid("empty topic filter")
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '#':
			if i != len(f)-1 || i > 0 && f[i-1] != '/' {
				return invalid("topic filter %q: # must be the whole last level", f)
			}
		case '+':
			if i > 0 && f[i-1] != '/' || i+1 < len(f) && f[i+1] != '/' {
				return invalid("topic filter %q: + must be a whole level", f)
			}
		}
	}
	return nil
}

// hasWildcard reports whether s holds "+" or "#" (two byte searches,
// faster than strings.ContainsAny on the topics of the message path).
func hasWildcard(s string) bool {
	return strings.IndexByte(s, '+') >= 0 || strings.IndexByte(s, '#') >= 0
}
