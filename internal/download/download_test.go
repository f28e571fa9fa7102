package download

import "testing"

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in           string
		first, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */512", -1, 512, true},
		{"bytes 1-2", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes x-2/3", 0, 0, false},
	} {
		f, tot, ok := parseContentRange(c.in)
		if f != c.first || tot != c.total || ok != c.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", c.in, f, tot, ok)
		}
	}
}
