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
