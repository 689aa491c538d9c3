package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// durationShapeMsg is the error for a duration written as a list or mapping.
const durationShapeMsg = `must be a duration such as "15m", "36h" or "30d"`

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// ParseDuration reads a non-negative duration written as a sequence of numbers with
// units: the units of time.ParseDuration (ns, us, µs, ms, s, m, h) plus d (24h) and
// w (7d), e.g. "15m", "1h30m", "36h", "30d", "2w", "1.5d". "0" alone is zero.
// Signs are rejected: no setting in Gatehouse takes a negative duration, and a
// leading "-" is almost always a typo that would otherwise disable a limit.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("duration %q must not have a sign", orig)
	}
	if s == "0" {
		return 0, nil
	}
	var total time.Duration
	for s != "" {
		// The number: digits with at most one decimal point.
		i := 0
		dot := false
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' && !dot) {
			if s[i] == '.' {
				dot = true
			}
			i++
		}
		num := s[:i]
		if num == "" || num == "." {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q", orig, s)
		}
		s = s[i:]
		// The unit: everything up to the next digit or dot.
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		var part time.Duration
		switch unit {
		case "":
			return 0, fmt.Errorf("invalid duration %q: missing unit after %s (use ms, s, m, h, d or w, e.g. %ss)", orig, num, num)
		case "d", "w":
			h, err := time.ParseDuration(num + "h")
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: out of range", orig)
			}
			mult := time.Duration(24)
			if unit == "w" {
				mult = 24 * 7
			}
			if h > math.MaxInt64/mult {
				return 0, fmt.Errorf("invalid duration %q: out of range", orig)
			}
			part = h * mult
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
			p, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: out of range", orig)
			}
			part = p
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use ms, s, m, h, d or w)", orig, unit)
		}
		if total > math.MaxInt64-part {
			return 0, fmt.Errorf("invalid duration %q: out of range", orig)
		}
		total += part
	}
	return total, nil
}

// FormatDuration writes d in the shortest form ParseDuration reads back exactly:
// whole days as "30d", otherwise Go's form without trailing zero units ("1h30m",
// "15m", "36h", "500ms").
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d > 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// String returns the duration in the form FormatDuration writes.
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// UnmarshalYAML reads a duration string (see ParseDuration). A bare integer is
// rejected unless it is 0: "timeout: 30" does not say whether it means seconds or
// minutes. Errors are *yaml.TypeError with the node's line so the decoder keeps
// going and every problem in the file is reported at once.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, durationShapeMsg)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string ParseDuration reads back exactly.
func (d Duration) MarshalYAML() (any, error) {
	if d < 0 {
		return nil, fmt.Errorf("config: marshal duration: negative value %s", time.Duration(d))
	}
	return d.String(), nil
}
