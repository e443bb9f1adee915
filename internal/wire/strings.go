package wire

import "unicode/utf8"

// CheckString reports whether s can be sent as an MQTT UTF-8 string: at
// most 65,535 bytes of valid UTF-8 without U+0000 (MQTT v5 1.5.4, MQTT
// 3.1.1 1.5.3). what names the field in the error.
func CheckString(what, s string) error {
	_, err := checkString(what, s)
	return err
}

// checkString is CheckString, also reporting whether s holds a wildcard
// character ("+" or "#"), found by the same pass.
func checkString(what, s string) (wildcard bool, err error) {
	if len(s) > MaxString {
		return false, invalid("%s is %d bytes, longer than %d", what, len(s), MaxString)
	}
	ascii, zero, wild := scan(s)
	switch {
	case !ascii && !utf8.ValidString(s):
		return false, invalid("%s is not valid UTF-8", what)
	case zero:
		return false, invalid("%s contains U+0000", what)
	}
	return wild, nil
}

// CheckBinary reports whether b can be sent as MQTT binary data (at most
// 65,535 bytes).
func CheckBinary(what string, b []byte) error {
	if len(b) > MaxString {
		return invalid("%s is %d bytes, longer than %d", what, len(b), MaxString)
	}
	return nil
}

// Broadcast bytes for scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scan reports, in one pass over s, eight bytes at a time, whether s is
// all ASCII (then valid UTF-8 without a further check) and whether it
// holds a 0 byte or a wildcard ("+", "#"). None of these bytes occurs
// inside a multi-byte UTF-8 sequence, so the answers hold for any s.
func scan[T string | []byte](s T) (ascii, zero, wildcard bool) {
	if len(s) < 8 {
		var high byte
		for i := 0; i < len(s); i++ {
			c := s[i]
			high |= c
			zero = zero || c == 0
			wildcard = wildcard || c == '+' || c == '#'
		}
		return high < 0x80, zero, wildcard
	}
	var high, z, w uint64
	// Whole words, the last one overlapping the one before it when len(s)
	// is not a multiple of 8 (a byte read twice changes no answer).
	for i := 0; ; i += 8 {
		if i > len(s)-8 {
			i = len(s) - 8
		}
		v := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		high |= v
		// A byte of x is 0 exactly when (x - ones) &^ x has its high bit.
		z |= (v - ones) &^ v
		p := v ^ ones*'+'
		h := v ^ ones*'#'
		w |= (p-ones)&^p | (h-ones)&^h
		if i == len(s)-8 {
			break
		}
	}
	return high&highs == 0, z&highs != 0, w&highs != 0
}
