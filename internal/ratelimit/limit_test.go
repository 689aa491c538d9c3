package ratelimit_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want ratelimit.Limit
	}{
		{"100/h", ratelimit.Limit{Count: 100, Period: time.Hour}},
		{"10/s", ratelimit.Limit{Count: 10, Period: time.Second}},
		{"5/m", ratelimit.Limit{Count: 5, Period: time.Minute}},
		{"1000/d", ratelimit.Limit{Count: 1000, Period: 24 * time.Hour}},
		{"20/10s", ratelimit.Limit{Count: 20, Period: 10 * time.Second}},
		{"3/15m", ratelimit.Limit{Count: 3, Period: 15 * time.Minute}},
		{"1/366d", ratelimit.Limit{Count: 1, Period: 366 * 24 * time.Hour}},
		{"10/s burst 50", ratelimit.Limit{Count: 10, Period: time.Second, Burst: 50}},
		{"100/h burst 1", ratelimit.Limit{Count: 100, Period: time.Hour, Burst: 1}},
		{"  7/m   burst\t9 ", ratelimit.Limit{Count: 7, Period: time.Minute, Burst: 9}},
		{"007/1s", ratelimit.Limit{Count: 7, Period: time.Second}},
		{"1000000/s", ratelimit.Limit{Count: 1_000_000, Period: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ratelimit.ParseLimit(tt.in)
			if err != nil {
				t.Fatalf("ParseLimit(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLimitRejects(t *testing.T) {
	tests := []struct {
		in      string
		errHint string // part of the message naming what is wrong
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"100", `missing "/"`},
		{"100h", `missing "/"`},
		{"/h", "count: missing number"},
		{"0/h", "at least 1"},
		{"-1/h", "not a whole number"},
		{"+1/h", "not a whole number"},
		{"1.5/h", "not a whole number"},
		{"1_000/h", "not a whole number"},
		{"1e3/h", "not a whole number"},
		{"1000000001/d", "exceeds 1000000000"},
		{"99999999999999999999/s", "exceeds"},
		{"10/", "period: missing"},
		{"10/x", `unknown unit "x"`},
		{"10/H", `unknown unit "H"`},
		{"10/ms", `unknown unit "ms"`},
		{"10/hour", `unknown unit "hour"`},
		{"10/0s", "multiplier must be at least 1"},
		{"10/367d", "exceeds"},
		{"10/99999999999999999999s", "exceeds"},
		{"10/-1s", `unknown unit "-1s"`},
		{"10/ s", "period: missing"},
		{"10 / s", `missing "/"`},
		{"10/s/s", `unknown unit "s/s"`},
		{"10/s per ip", `unexpected "per"`},
		{"10/s burst", `"burst" needs a number`},
		{"10/s burst 0", "burst: must be at least 1"},
		{"10/s burst x", "burst"},
		{"10/s burst 5 6", `unexpected "6"`},
		{"10/s BURST 5", `unexpected "BURST"`},
		{"2000000/s", "faster than one request per 1µs"},
		{"1/d burst 1000000", "to refill"},
		{"10/s\x00", `unknown unit`},
		{strings.Repeat("1", 65), "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ratelimit.ParseLimit(tt.in)
			if err == nil {
				t.Fatalf("ParseLimit(%q) = %+v, want an error", tt.in, got)
			}
			if !errors.Is(err, ratelimit.ErrInvalidLimit) {
				t.Errorf("error %v does not wrap ErrInvalidLimit", err)
			}
			if !strings.Contains(err.Error(), tt.errHint) {
				t.Errorf("error %q does not mention %q", err, tt.errHint)
			}
			if got != (ratelimit.Limit{}) {
				t.Errorf("failed parse returned %+v, want the zero Limit", got)
			}
		})
	}
}

func TestLimitString(t *testing.T) {
	tests := []struct {
		l    ratelimit.Limit
		want string
	}{
		{ratelimit.Limit{Count: 100, Period: time.Hour}, "100/h"},
		{ratelimit.Limit{Count: 20, Period: 10 * time.Second}, "20/10s"},
		{ratelimit.Limit{Count: 1, Period: 90 * time.Second}, "1/90s"},
		{ratelimit.Limit{Count: 1, Period: 48 * time.Hour}, "1/2d"},
		{ratelimit.Limit{Count: 5, Period: time.Minute, Burst: 10}, "5/m burst 10"},
		{ratelimit.Limit{Count: 5, Period: 1500 * time.Millisecond}, "5/1.5s"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.l, got, tt.want)
		}
	}
}

func TestLimitDerived(t *testing.T) {
	tests := []struct {
		l        ratelimit.Limit
		burst    int64
		interval time.Duration
		window   time.Duration
	}{
		{ratelimit.Limit{Count: 100, Period: time.Hour}, 100, 36 * time.Second, time.Hour},
		{ratelimit.Limit{Count: 10, Period: time.Second, Burst: 50}, 50, 100 * time.Millisecond, 5 * time.Second},
		{ratelimit.Limit{Count: 3, Period: time.Second}, 3, 333333 * time.Microsecond, time.Second},
		{ratelimit.Limit{Count: 3, Period: time.Second, Burst: 3}, 3, 333333 * time.Microsecond, time.Second},
		{ratelimit.Limit{}, 0, 0, 0},
	}
	for _, tt := range tests {
		if got := tt.l.EffectiveBurst(); got != tt.burst {
			t.Errorf("%v EffectiveBurst() = %d, want %d", tt.l, got, tt.burst)
		}
		if got := tt.l.Interval(); got != tt.interval {
			t.Errorf("%v Interval() = %v, want %v", tt.l, got, tt.interval)
		}
		if got := tt.l.Window(); got != tt.window {
			t.Errorf("%v Window() = %v, want %v", tt.l, got, tt.window)
		}
	}
}

// FuzzParseLimit checks that ParseLimit never panics, that whatever it
// accepts is valid, and that String writes it back to the same Limit.
func FuzzParseLimit(f *testing.F) {
	for _, seed := range []string{
		"100/h", "10/s", "5/m", "1000/d", "20/10s", // the documented forms
		"10/s burst 50", " 7/m  burst 9 ", // burst, odd spacing
		"1000000/s", "1/366d", "1000000000/366d", // bounds
		"0/h", "10/0s", "2000000/s", "1/d burst 1000000", // just out of bounds
		"10/s per ip", "10/s burst", "10/s burst 5 6", // trailing junk
		"99999999999999999999/s", "10/99999999999999999999s", // overflow
		"-1/h", "+1/h", "1e3/h", "10/H", "10/ms", "\x00/\xff", "/", "", // hostile
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ratelimit.ParseLimit(s)
		if err != nil {
			if !errors.Is(err, ratelimit.ErrInvalidLimit) {
				t.Fatalf("ParseLimit(%q) error %v does not wrap ErrInvalidLimit", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) = %+v, which fails Validate: %v", s, l, err)
		}
		back, err := ratelimit.ParseLimit(l.String())
		if err != nil || back != l {
			t.Fatalf("round trip of %q via %q = %+v, %v; want %+v", s, l.String(), back, err, l)
		}
	})
}
