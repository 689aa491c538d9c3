package ratelimit_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

type policy struct {
	name string
	l    ratelimit.Limit
	d    ratelimit.Decision
}

func TestHeaders(t *testing.T) {
	perHour := ratelimit.Limit{Count: 100, Period: time.Hour}
	tests := []struct {
		name       string
		policies   []policy
		wantPolicy string
		wantRL     string
		wantRetry  string
	}{
		{
			name:       "draft example: one policy, allowed",
			policies:   []policy{{"name", perHour, ratelimit.Decision{Allowed: true, Limit: 100, Remaining: 42, ResetAfter: 30 * time.Second}}},
			wantPolicy: `"name";q=100;w=3600`,
			wantRL:     `"name";r=42;t=30`,
		},
		{
			name: "draft example: two policies in one list",
			policies: []policy{
				{"burst", ratelimit.Limit{Count: 100, Period: time.Minute}, ratelimit.Decision{Allowed: true, Remaining: 50, ResetAfter: 30 * time.Second}},
				{"daily", ratelimit.Limit{Count: 1000, Period: 24 * time.Hour}, ratelimit.Decision{Allowed: true, Remaining: 999, ResetAfter: 36000 * time.Second}},
			},
			wantPolicy: `"burst";q=100;w=60, "daily";q=1000;w=86400`,
			wantRL:     `"burst";r=50;t=30, "daily";r=999;t=36000`,
		},
		{
			name:       "denied: Retry-After rounds up",
			policies:   []policy{{"api", perHour, ratelimit.Decision{Remaining: 0, ResetAfter: 3599*time.Second + time.Millisecond, RetryAfter: 35*time.Second + time.Microsecond}}},
			wantPolicy: `"api";q=100;w=3600`,
			wantRL:     `"api";r=0;t=3600`,
			wantRetry:  "36",
		},
		{
			name:       "denied with a sub-second wait: Retry-After is at least 1",
			policies:   []policy{{"api", perHour, ratelimit.Decision{RetryAfter: 300 * time.Millisecond, ResetAfter: 300 * time.Millisecond}}},
			wantPolicy: `"api";q=100;w=3600`,
			wantRL:     `"api";r=0;t=1`,
			wantRetry:  "1",
		},
		{
			name:       "denied with no wait known (fail-closed policy): Retry-After 1",
			policies:   []policy{{"api", perHour, ratelimit.Decision{}}},
			wantPolicy: `"api";q=100;w=3600`,
			wantRL:     `"api";r=0;t=0`,
			wantRetry:  "1",
		},
		{
			name: "several denials: the longest Retry-After wins",
			policies: []policy{
				{"a", perHour, ratelimit.Decision{RetryAfter: 90 * time.Second}},
				{"b", perHour, ratelimit.Decision{RetryAfter: 10 * time.Second}},
				{"c", perHour, ratelimit.Decision{Allowed: true, Remaining: 3}},
			},
			wantPolicy: `"a";q=100;w=3600, "b";q=100;w=3600, "c";q=100;w=3600`,
			wantRL:     `"a";r=0;t=0, "b";r=0;t=0, "c";r=3;t=0`,
			wantRetry:  "90",
		},
		{
			name:       "explicit burst: quota is the burst over its refill time",
			policies:   []policy{{"login", ratelimit.Limit{Count: 10, Period: time.Second, Burst: 50}, ratelimit.Decision{Allowed: true, Remaining: 49, ResetAfter: 100 * time.Millisecond}}},
			wantPolicy: `"login";q=50;w=5`,
			wantRL:     `"login";r=49;t=1`,
		},
		{
			name:       "fractional window rounds up",
			policies:   []policy{{"x", ratelimit.Limit{Count: 3, Period: 1500 * time.Millisecond}, ratelimit.Decision{Allowed: true, Remaining: 2}}},
			wantPolicy: `"x";q=3;w=2`,
			wantRL:     `"x";r=2;t=0`,
		},
		{
			name:       "negative values never reach the wire",
			policies:   []policy{{"x", perHour, ratelimit.Decision{Allowed: true, Remaining: -5, ResetAfter: -time.Second}}},
			wantPolicy: `"x";q=100;w=3600`,
			wantRL:     `"x";r=0;t=0`,
		},
		{
			name:       "hostile name: quotes and backslashes escaped",
			policies:   []policy{{`a"b\c`, perHour, ratelimit.Decision{Allowed: true}}},
			wantPolicy: `"a\"b\\c";q=100;w=3600`,
			wantRL:     `"a\"b\\c";r=0;t=0`,
		},
		{
			name:       "hostile name: CR LF and non-ASCII cannot break the field",
			policies:   []policy{{"x\r\nSet-Cookie: a=b\x00é", perHour, ratelimit.Decision{Allowed: true}}},
			wantPolicy: `"x__Set-Cookie: a=b___";q=100;w=3600`,
			wantRL:     `"x__Set-Cookie: a=b___";r=0;t=0`,
		},
		{
			name:       "empty name is an empty sf-string",
			policies:   []policy{{"", perHour, ratelimit.Decision{Allowed: true, Remaining: 1}}},
			wantPolicy: `"";q=100;w=3600`,
			wantRL:     `"";r=1;t=0`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i, p := range tt.policies {
				if i == 0 {
					ratelimit.SetHeaders(h, p.name, p.l, p.d)
				} else {
					ratelimit.AddHeaders(h, p.name, p.l, p.d)
				}
			}
			if got := h.Values("RateLimit-Policy"); len(got) != 1 || got[0] != tt.wantPolicy {
				t.Errorf("RateLimit-Policy = %q, want [%q]", got, tt.wantPolicy)
			}
			if got := h.Values("RateLimit"); len(got) != 1 || got[0] != tt.wantRL {
				t.Errorf("RateLimit = %q, want [%q]", got, tt.wantRL)
			}
			if got := h.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
		})
	}
}

func TestSetHeadersReplaces(t *testing.T) {
	h := http.Header{}
	l := ratelimit.Limit{Count: 5, Period: time.Minute}
	ratelimit.AddHeaders(h, "old", l, ratelimit.Decision{Allowed: true, Remaining: 4})
	ratelimit.AddHeaders(h, "older", l, ratelimit.Decision{Allowed: true, Remaining: 4})
	ratelimit.SetHeaders(h, "new", l, ratelimit.Decision{Allowed: true, Remaining: 3, ResetAfter: 24 * time.Second})
	if got := h.Get("RateLimit-Policy"); got != `"new";q=5;w=60` {
		t.Errorf("RateLimit-Policy = %q", got)
	}
	if got := h.Get("RateLimit"); got != `"new";r=3;t=24` {
		t.Errorf("RateLimit = %q", got)
	}
}

func BenchmarkSetHeaders(b *testing.B) {
	h := http.Header{}
	l := ratelimit.Limit{Count: 100, Period: time.Hour}
	d := ratelimit.Decision{Remaining: 0, ResetAfter: time.Hour, RetryAfter: 36 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		ratelimit.SetHeaders(h, "per-user", l, d)
	}
}
