package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    Rate
		wantErr string
	}{
		{in: "100/h", want: Rate{100, time.Hour}},
		{in: "1000/d", want: Rate{1000, day}},
		{in: "10/s", want: Rate{10, time.Second}},
		{in: "5/m", want: Rate{5, time.Minute}},
		{in: "100", wantErr: "N/unit"},
		{in: "", wantErr: "N/unit"},
		{in: "0/h", wantErr: "positive"},
		{in: "-1/h", wantErr: "positive"},
		{in: "+1/h", wantErr: "not a whole number"},
		{in: "1.5/h", wantErr: "not a whole number"},
		{in: "/h", wantErr: "not a whole number"},
		{in: "x/h", wantErr: "not a whole number"},
		{in: "99999999999999999999/h", wantErr: "not a whole number"},
		{in: "100/w", wantErr: "unit"},
		{in: "100/hour", wantErr: "unit"},
		{in: "100/", wantErr: "unit"},
		{in: "100/h/h", wantErr: "unit"},
		{in: " 100/h", wantErr: "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestParseRouteLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    RouteLimit
		wantErr string
	}{
		{in: "10/s", want: RouteLimit{Rate{10, time.Second}, PerRoute}},
		{in: "10/s per ip", want: RouteLimit{Rate{10, time.Second}, PerIP}},
		{in: "100/m per user", want: RouteLimit{Rate{100, time.Minute}, PerUser}},
		{in: "100/m  per   route", want: RouteLimit{Rate{100, time.Minute}, PerRoute}},
		{in: "10/s per", wantErr: "optionally followed"},
		{in: "10/s by ip", wantErr: `expected "per"`},
		{in: "10/s per plan", wantErr: "ip, user or route"},
		{in: "10/s per ip extra", wantErr: "optionally followed"},
		{in: "ten/s per ip", wantErr: "whole number"},
		{in: "", wantErr: "optionally followed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRouteLimit(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRouteLimit(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRouteLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/h", "1000/d", "0/s", "-1/m", "1/w", "9223372036854775807/s", "10/s per ip", "10/s per"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := ParseRate(s); err == nil {
			if r.Count <= 0 || r.Period <= 0 {
				t.Fatalf("ParseRate(%q) = %+v: not positive", s, r)
			}
			if back, err := ParseRate(r.String()); err != nil || back != r {
				t.Fatalf("round trip of %q: %+v, %v", s, back, err)
			}
		}
		if l, err := ParseRouteLimit(s); err == nil {
			if l.Count <= 0 || (l.Per != PerRoute && l.Per != PerIP && l.Per != PerUser) {
				t.Fatalf("ParseRouteLimit(%q) = %+v", s, l)
			}
		}
	})
}
