package size

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"2GiB": 2 << 30, "256MiB": 256 << 20, "64KiB": 64 << 10, "1000": 1000} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "0", "1.5GiB", "2GB"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
