package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "15m", want: 15 * time.Minute},
		{in: "36h", want: 36 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "30d", want: 30 * day},
		{in: "2w", want: 14 * day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "10µs", want: 10 * time.Microsecond},
		{in: "1ns", want: 1},
		{in: "", wantErr: "empty"},
		{in: "-5m", wantErr: "sign"},
		{in: "+5m", wantErr: "sign"},
		{in: "10", wantErr: "missing unit"},
		{in: "15", wantErr: "e.g. 15s"},
		{in: "5y", wantErr: `unknown unit "y"`},
		{in: "5 m", wantErr: "unknown unit"},
		{in: "m", wantErr: "expected a number"},
		{in: "1..5s", wantErr: "missing unit"},
		{in: ".s", wantErr: "expected a number"},
		{in: "abc", wantErr: "expected a number"},
		{in: "15m ", wantErr: "unknown unit"},
		{in: "99999999999999999999h", wantErr: "out of range"},
		{in: "200000w", wantErr: "out of range"},
		{in: "106751d", want: 106751 * day},
		{in: "106752d", wantErr: "out of range"},
		{in: "106751d24h", wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{15 * time.Minute, "15m"},
		{90 * time.Minute, "1h30m"},
		{36 * time.Hour, "36h"},
		{30 * day, "30d"},
		{14 * day, "14d"},
		{5 * time.Second, "5s"},
		{time.Hour + time.Second, "1h0m1s"},
		{500 * time.Millisecond, "500ms"},
		{1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDuration(FormatDuration(tt.in))
		if err != nil || back != tt.in {
			t.Errorf("round trip of %v: %v, %v", tt.in, back, err)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2w"), &v); err != nil || v.D.D() != 14*day {
		t.Fatalf("decode 2w: %v, %v", v.D, err)
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "d: 14d\n" {
		t.Fatalf("encode: %q, %v", out, err)
	}
	for _, bad := range []string{"d: -1s", "d: 30", "d: [1s]", "d: {a: 1}", "d: 1x"} {
		v.D = 7
		err := yaml.Unmarshal([]byte(bad), &v)
		if _, ok := err.(*yaml.TypeError); !ok {
			t.Errorf("%q: error %v (%T), want *yaml.TypeError so decoding continues", bad, err, err)
		}
		if !strings.Contains(err.Error(), "line 1:") {
			t.Errorf("%q: error %q has no line", bad, err)
		}
		if v.D != 7 {
			t.Errorf("%q: value changed to %v on error", bad, v.D)
		}
	}
	if _, err := Duration(-1).MarshalYAML(); err == nil {
		t.Error("MarshalYAML of a negative duration: no error")
	}
	// A null keeps the value that was there (the default).
	v.D = Duration(time.Minute)
	if err := yaml.Unmarshal([]byte("d: ~"), &v); err != nil || v.D.D() != time.Minute {
		t.Errorf("null: %v, %v; want the previous value kept", v.D, err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"15m", "1h30m", "30d", "2w", "1.5d", "0", "-1s", "10", "99999999999999999999h", "1..5s", "µs", "106751d24h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d {
			t.Fatalf("round trip of %q (%v): %v, %v", s, d, back, err)
		}
	})
}
