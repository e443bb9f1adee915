package mqttkeep

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateTopicName(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},
		{"$SYS/x", true},
		{"ünïcode/✓", true},
		{strings.Repeat("a", 65535), true},
		{"", false},
		{strings.Repeat("a", 65536), false},
		{"a/+", false},
		{"a/#", false},
		{"a\x00", false},
		{"\xff", false},
	} {
		err := validateTopicName(tc.topic)
		if (err == nil) != tc.ok {
			t.Errorf("validateTopicName(%.20q) = %v, want ok=%v", tc.topic, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("error %v does not match ErrInvalidTopic", err)
		}
	}
}

func TestValidateFilter(t *testing.T) {
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{"a/b", true},
		{"#", true},
		{"+", true},
		{"a/+/c", true},
		{"a/#", true},
		{"+/+/#", true},
		{"$share/group/a/+", true},
		{"$share/g/#", true},
		{"a/#/b", false},
		{"a+", false},
		{"a/b#", false},
		{"a/+b/c", false},
		{"", false},
		{"$share/group", false},
		{"$share//a", false},
		{"$share/g+/a", false},
		{"$share/g/a/#/b", false},
	} {
		err := validateFilter(tc.filter)
		if (err == nil) != tc.ok {
			t.Errorf("validateFilter(%q) = %v, want ok=%v", tc.filter, err, tc.ok)
		}
	}
}

func TestMatchTopic(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		match         bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"+/+", "/x", true},
		{"$share/g/a/+", "a/b", true},
		{"$share/g/a/+", "b/b", false},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
	} {
		if got := matchTopic(tc.filter, tc.topic); got != tc.match {
			t.Errorf("matchTopic(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.match)
		}
	}
}
