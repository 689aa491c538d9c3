package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type step struct {
	at time.Duration
	e  store.Event
}

// run feeds steps to d and returns the firings with the index that tripped each.
func run(d Detector, steps []step) (fired []int, fs []Firing) {
	for i, s := range steps {
		e := s.e
		if f, ok := d.Observe(&e, t0.Add(s.at)); ok {
			fired = append(fired, i)
			fs = append(fs, f)
		}
	}
	return fired, fs
}

func failed(ip, user string) store.Event {
	return store.Event{Type: audit.LoginFailed, IP: ip, UserID: user, Detail: map[string]string{"reason": "wrong_password"}}
}

func denied(ip, user, route, status, object, reason string) store.Event {
	return store.Event{Type: audit.RequestDenied, IP: ip, UserID: user, Detail: map[string]string{"route": route, "status": status, "object": object, "reason": reason}}
}

func repeat(n int, every time.Duration, mk func(i int) store.Event) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{at: time.Duration(i) * every, e: mk(i)}
	}
	return out
}

func TestBruteForceIP(t *testing.T) {
	th := Threshold{Threshold: 5, Window: time.Minute, BanFor: 10 * time.Minute}
	cases := []struct {
		name  string
		steps []step
		want  []int
	}{
		{"five in a minute fire once", repeat(50, time.Second, func(int) store.Event { return failed("192.0.2.1", "") }), []int{4}},
		{"spread out never fires", repeat(50, 20*time.Second, func(int) store.Event { return failed("192.0.2.1", "u1") }), nil},
		{"other addresses do not add up", repeat(20, time.Second, func(i int) store.Event { return failed(fmt.Sprintf("192.0.2.%d", i), "") }), nil},
		{"successes and other events do not count", repeat(20, time.Second, func(i int) store.Event {
			return store.Event{Type: audit.LoginSucceeded, IP: "192.0.2.1"}
		}), nil},
		{"no address, nothing to ban", repeat(20, time.Second, func(int) store.Event { return failed("", "u1") }), nil},
		// After the cooldown (max(window, ban)) the same address can fire again.
		{"fires again after the cooldown", repeat(80, 10*time.Second, func(int) store.Event { return failed("192.0.2.1", "") }), []int{4, 68}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, fs := run(NewBruteForceIP(th), tc.steps)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("fired at %v, want %v", got, tc.want)
			}
			for _, f := range fs {
				if f.Kind != store.BanIP || f.Value != "192.0.2.1" || f.Count != 5 || f.BanFor != 10*time.Minute || f.Detector != BruteForceIP {
					t.Fatalf("firing %+v", f)
				}
			}
		})
	}
}

func TestBruteForceAccount(t *testing.T) {
	d := NewBruteForceAccount(Threshold{Threshold: 3, Window: time.Minute})
	steps := repeat(10, time.Second, func(i int) store.Event { return failed(fmt.Sprintf("198.51.100.%d", i), "victim") })
	steps = append(steps, repeat(10, time.Second, func(int) store.Event { return failed("198.51.100.1", "") })...) // unknown accounts
	got, fs := run(d, steps)
	if fmt.Sprint(got) != "[2]" || fs[0].Kind != store.BanUser || fs[0].Value != "victim" || fs[0].BanFor != 0 {
		t.Fatalf("fired at %v: %+v", got, fs)
	}
}

func TestStuffingIP(t *testing.T) {
	th := Threshold{Threshold: 10, Window: 10 * time.Minute, BanFor: time.Hour}
	cases := []struct {
		name  string
		steps []step
		want  []int
	}{
		{"ten accounts from one address", repeat(50, time.Second, func(i int) store.Event { return failed("203.0.113.5", fmt.Sprintf("u%d", i)) }), []int{9}},
		{"one account many times is not stuffing", repeat(50, time.Second, func(int) store.Event { return failed("203.0.113.5", "u1") }), nil},
		{"unknown accounts named by the identity service count", repeat(12, time.Second, func(i int) store.Event {
			e := failed("203.0.113.5", "")
			e.Detail = map[string]string{"account": fmt.Sprintf("idx%d", i)}
			return e
		}), []int{9}},
		{"accounts outside the window drop out", repeat(30, 2*time.Minute, func(i int) store.Event { return failed("203.0.113.5", fmt.Sprintf("u%d", i)) }), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := run(NewStuffingIP(th), tc.steps)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("fired at %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStuffingAccount(t *testing.T) {
	d := NewStuffingAccount(Threshold{Threshold: 5, Window: 10 * time.Minute})
	got, fs := run(d, repeat(20, time.Second, func(i int) store.Event { return failed(fmt.Sprintf("2001:db8::%x", i), "victim") }))
	if fmt.Sprint(got) != "[4]" || fs[0].Value != "victim" || fs[0].Kind != store.BanUser {
		t.Fatalf("fired at %v: %+v", got, fs)
	}
	got, _ = run(NewStuffingAccount(Threshold{Threshold: 5, Window: 10 * time.Minute}),
		repeat(20, time.Second, func(int) store.Event { return failed("2001:db8::1", "victim") }))
	if got != nil {
		t.Fatalf("one address is not many: fired at %v", got)
	}
}

func TestEnumeration(t *testing.T) {
	th := Threshold{Threshold: 20, Window: 5 * time.Minute, BanFor: 15 * time.Minute}
	cases := []struct {
		name     string
		steps    []step
		want     []int
		kind, by string
	}{
		{"a user collecting 403s", repeat(200, 100*time.Millisecond, func(i int) store.Event {
			return denied("192.0.2.9", "mallory", "note", "403", fmt.Sprint(i), "rule_denied")
		}), []int{19}, store.BanUser, "mallory"},
		{"an anonymous caller collecting 404s", repeat(200, 100*time.Millisecond, func(i int) store.Event {
			return denied("192.0.2.9", "", "note", "404", fmt.Sprint(i), "upstream_404")
		}), []int{19}, store.BanIP, "192.0.2.9"},
		{"the same id again and again", repeat(200, 100*time.Millisecond, func(int) store.Event {
			return denied("192.0.2.9", "mallory", "note", "403", "7", "rule_denied")
		}), nil, "", ""},
		{"spread over routes", repeat(200, 100*time.Millisecond, func(i int) store.Event {
			return denied("192.0.2.9", "mallory", fmt.Sprintf("r%d", i%20), "403", fmt.Sprint(i), "rule_denied")
		}), nil, "", ""},
		{"401s are authentication, not enumeration", repeat(200, 100*time.Millisecond, func(i int) store.Event {
			return denied("192.0.2.9", "", "note", "401", fmt.Sprint(i), "invalid_token")
		}), nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, fs := run(NewEnumeration(th), tc.steps)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("fired at %v, want %v", got, tc.want)
			}
			if len(fs) > 0 && (fs[0].Kind != tc.kind || fs[0].Value != tc.by) {
				t.Fatalf("subject %s:%s, want %s:%s", fs[0].Kind, fs[0].Value, tc.kind, tc.by)
			}
		})
	}
}

func TestRefreshReuse(t *testing.T) {
	d := NewRefreshReuse(Threshold{Threshold: 1, Window: time.Hour, BanFor: 15 * time.Minute})
	steps := []step{
		{0, store.Event{Type: audit.TokenRefreshed, IP: "192.0.2.1", SessionID: "s1"}},
		{time.Second, store.Event{Type: audit.RefreshTokenReused, IP: "203.0.113.66", SessionID: "s1", UserID: "u1"}},
		{2 * time.Second, store.Event{Type: audit.RefreshTokenReused, IP: "203.0.113.66", SessionID: "s1", UserID: "u1"}}, // muted
		{3 * time.Second, store.Event{Type: audit.RefreshTokenReused, SessionID: "s2"}},                                   // no address: the session
	}
	got, fs := run(d, steps)
	if fmt.Sprint(got) != "[1 3]" || fs[0].Kind != store.BanIP || fs[0].Value != "203.0.113.66" || fs[1].Kind != store.BanSession || fs[1].Value != "s2" {
		t.Fatalf("fired at %v: %+v", got, fs)
	}
}

func TestTokenForgery(t *testing.T) {
	d := NewTokenForgery(Threshold{Threshold: 10, Window: 5 * time.Minute, BanFor: time.Hour})
	var steps []step
	for i := range 30 {
		steps = append(steps, step{time.Duration(i) * time.Second, denied("192.0.2.66", "", "notes", "401", "", "expired_token")})
	}
	for i := range 30 {
		steps = append(steps, step{time.Duration(30+i) * time.Second, denied("192.0.2.66", "", "notes", "401", "", "invalid_token")})
	}
	got, fs := run(d, steps)
	if fmt.Sprint(got) != "[39]" || fs[0].Value != "192.0.2.66" {
		t.Fatalf("expired tokens must not count; fired at %v", got)
	}
}

// TestDetectorMemoryIsBounded: an attacker rotating through more subjects
// than maxKeys cannot grow a detector without bound.
func TestDetectorMemoryIsBounded(t *testing.T) {
	d := NewBruteForceIP(Threshold{Threshold: 5, Window: time.Hour}).(*rule)
	for i := range maxKeys + 1000 {
		e := failed(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "")
		d.Observe(&e, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(d.times); n > maxKeys {
		t.Fatalf("%d keys tracked", n)
	}
	if d.overflow.Load() != 1000 {
		t.Fatalf("overflow %d, want 1000", d.overflow.Load())
	}
	// Once the window has passed, room is made again.
	e := failed("192.0.2.1", "")
	d.Observe(&e, t0.Add(2*time.Hour))
	if _, ok := d.times["ip:192.0.2.1"]; !ok {
		t.Fatal("expired subjects were not collected")
	}
}

func TestErrorSpike(t *testing.T) {
	s := &Spike{Window: time.Minute, MinErrors: 20, Factor: 4, Baseline: 10 * time.Minute}
	var fired []string
	feed := func(minute int, n int64) {
		for _, f := range s.Add("5xx", n, t0.Add(time.Duration(minute)*time.Minute)) {
			fired = append(fired, fmt.Sprintf("%d:%d", minute, f.Count))
		}
	}
	// A steady 10 errors a minute for half an hour is the baseline: no firing.
	for m := range 30 {
		feed(m, 10)
	}
	if fired != nil {
		t.Fatalf("steady traffic fired: %v", fired)
	}
	feed(30, 200) // the spike, reported when its window closes
	feed(31, 10)
	feed(32, 10)
	if len(fired) != 1 || fired[0] != "31:200" {
		t.Fatalf("fired %v, want one firing for the 200-error window", fired)
	}
	// Below MinErrors never fires, however quiet the baseline.
	q := &Spike{Window: time.Minute, MinErrors: 20, Factor: 4, Baseline: 10 * time.Minute}
	for m := range 10 {
		if fs := q.Add("5xx", int64(m%2*15), t0.Add(time.Duration(m)*time.Minute)); len(fs) > 0 {
			t.Fatalf("fired below min_errors: %+v", fs)
		}
	}
}
