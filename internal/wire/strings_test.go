package wire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanNaive is what scan computes, byte by byte.
func scanNaive(s string) (ascii, zero, wildcard bool) {
	ascii = true
	for i := 0; i < len(s); i++ {
		ascii = ascii && s[i] < 0x80
		zero = zero || s[i] == 0
		wildcard = wildcard || s[i] == '+' || s[i] == '#'
	}
	return
}

// scan agrees with the byte-by-byte answer for every byte value at every
// position of strings up to 20 bytes (every alignment of its 8-byte
// words), over backgrounds that lie next to each answer, and for random
// strings; CheckString accepts exactly valid UTF-8 without U+0000.
func TestScan(t *testing.T) {
	check := func(s string) {
		t.Helper()
		a, z, w := scan(s)
		na, nz, nw := scanNaive(s)
		if a != na || z != nz || w != nw {
			t.Fatalf("scan(%q) = %v %v %v, want %v %v %v", s, a, z, w, na, nz, nw)
		}
		ba, bz, bw := scan([]byte(s))
		if ba != a || bz != z || bw != w {
			t.Fatalf("scan([]byte(%q)) differs from scan of the string", s)
		}
		err := CheckString("s", s)
		if want := utf8.ValidString(s) && !strings.Contains(s, "\x00"); (err == nil) != want {
			t.Fatalf("CheckString(%q) = %v", s, err)
		}
	}
	for _, bg := range []byte{'a', 0x01, 0xFF, 0x80, '*', ',', '"', '$', 0x7F} {
		for n := 0; n <= 20; n++ {
			base := []byte(strings.Repeat(string(rune(0)), n))
			for i := range base {
				base[i] = bg
			}
			check(string(base))
			for i := 0; i < n; i++ {
				for c := 0; c < 256; c++ {
					b := append([]byte(nil), base...)
					b[i] = byte(c)
					check(string(b))
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(4) == 0 {
				b[i] = "ab/+#\x00é"[r.IntN(8)]
			}
		}
		check(string(b))
	}
}
