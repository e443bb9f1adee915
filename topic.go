package mqttkeep

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is the longest topic name or filter MQTT can encode: a UTF-8
// string with a two-byte length prefix.
const maxTopicLen = 65535

// validateTopicName checks a PUBLISH topic name against MQTT v5 section
// 4.7: non-empty, UTF-8 without U+0000, at most 65,535 bytes, no wildcards.
func validateTopicName(topic string) error {
	if err := validateUTF8(topic); err != nil {
		return err
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("%w: topic name %q contains a wildcard (+ or #)", ErrInvalidTopic, topic)
	}
	return nil
}

// validateFilter checks a SUBSCRIBE topic filter: the rules of a topic
// name, except that "+" must fill a whole level and "#" must be the whole
// last level. Shared subscriptions ($share/group/filter) are checked for a
// non-empty, wildcard-free group and a valid filter after it.
func validateFilter(filter string) error {
	if err := validateUTF8(filter); err != nil {
		return err
	}
	f := filter
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, sub, found := strings.Cut(rest, "/")
		if !found || group == "" || sub == "" {
			return fmt.Errorf("%w: shared subscription %q must be $share/{group}/{filter}", ErrInvalidTopic, filter)
		}
		if strings.ContainsAny(group, "+#") {
			return fmt.Errorf("%w: shared subscription group %q contains a wildcard", ErrInvalidTopic, group)
		}
		f = sub
	}
	levels := strings.Split(f, "/")
	for i, level := range levels {
		switch {
		case level == "#":
			if i != len(levels)-1 {
				return fmt.Errorf("%w: filter %q: # must be the last level", ErrInvalidTopic, filter)
			}
		case level == "+":
		case strings.ContainsAny(level, "+#"):
			return fmt.Errorf("%w: filter %q: a wildcard must fill a whole level", ErrInvalidTopic, filter)
		}
	}
	return nil
}

func validateUTF8(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case len(s) > maxTopicLen:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidTopic, len(s), maxTopicLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidTopic)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%w: contains U+0000", ErrInvalidTopic)
	}
	return nil
}

// matchTopic reports whether a topic name matches a (valid) topic filter.
// A shared subscription matches on the filter after its group. Topics that
// start with "$" are not matched by a leading wildcard (MQTT v5 4.7.2).
func matchTopic(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, filter, _ = strings.Cut(rest, "/")
	}
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			// "a/#" also matches "a" (# includes the parent level).
			return fmore == tmore || (!tmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}

// MatchTopic reports whether topic matches filter ($share/{group}/ skipped).
func MatchTopic(filter, topic string) bool {
	return validateFilter(filter) == nil && validateTopicName(topic) == nil && matchTopic(filter, topic)
}

// ValidateTopicName returns Publish's [ErrInvalidTopic] for topic, if any.
func ValidateTopicName(topic string) error { return validateTopicName(topic) }

// ValidateTopicFilter returns Subscribe's [ErrInvalidTopic] for filter, if any.
func ValidateTopicFilter(filter string) error { return validateFilter(filter) }
