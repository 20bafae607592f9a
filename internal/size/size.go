// Package size parses byte sizes for the demo and benchmark tools.
package size

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses a positive byte count with an optional binary unit:
// "2GiB", "512MiB", "64KiB" or "1048576".
func Parse(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional KiB, MiB or GiB suffix, e.g. 2GiB", s)
	}
	return n * mult, nil
}

// Format writes n bytes with a binary unit and one decimal, as people read
// sizes: "512 B", "1.5 KiB", "3.9 GiB". The inverse, to a tenth of the
// unit, of Parse.
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
