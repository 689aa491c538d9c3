package monitor

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Firing is one detector deciding that a subject is attacking.
type Firing struct {
	Detector string
	// Kind and Value name the subject: store.BanIP / BanUser / BanSession and
	// the address or id; Kind "" for whole-system detectors (error spikes).
	Kind, Value string
	Count       int           // events (or distinct values) counted
	Window      time.Duration // over this window
	BanFor      time.Duration // 0: alert only
	Summary     string
	// Event is the event that tripped the detector (its request id, IP, route).
	Event store.Event
}

// Subject is "kind:value", or "" for whole-system firings.
func (f Firing) Subject() string {
	if f.Kind == "" {
		return f.Value
	}
	return f.Kind + ":" + f.Value
}

// Threshold is one detector's tuning.
type Threshold struct {
	Threshold int
	Window    time.Duration
	BanFor    time.Duration
}

// Detector watches the event stream. Detectors run on one goroutine (the
// monitor's), so they keep plain maps; each bounds its memory.
type Detector interface {
	Name() string
	Observe(e *store.Event, now time.Time) (Firing, bool)
}

// maxKeys bounds each detector's tracked subjects. Beyond it, expired entries
// are collected; if none are, new subjects are ignored until some expire (and
// counted: an attacker rotating through millions of addresses is visible in
// gatehouse_monitor_detector_overflow_total, and the per-IP limits still apply).
const maxKeys = 50_000

// hit is what a detector's match function extracts from an event.
type hit struct {
	kind, value string // the subject (what gets banned)
	key         string // what is counted; "" → kind:value
	item        string // for distinct counting: the value whose distinct count matters
}

// rule is a threshold detector: count events (or distinct items) per key in a
// sliding window; fire at the threshold; then stay quiet for that key for the
// cooldown so that one attack fires once.
type rule struct {
	name     string
	t        Threshold
	distinct bool
	match    func(e *store.Event) (hit, bool)
	describe func(n int, window time.Duration, h hit) string

	times    map[string][]time.Time          // !distinct: the last Threshold event times
	items    map[string]map[string]time.Time // distinct: item → last seen
	muted    map[string]time.Time            // key → quiet until
	nextGC   time.Time                       // when full, collect no more often than this
	overflow atomic.Int64                    // read by the metrics scrape
}

func newRule(name string, t Threshold, distinct bool, match func(*store.Event) (hit, bool), describe func(int, time.Duration, hit) string) *rule {
	return &rule{name: name, t: t, distinct: distinct, match: match, describe: describe,
		times: map[string][]time.Time{}, items: map[string]map[string]time.Time{}, muted: map[string]time.Time{}}
}

func (r *rule) Name() string { return r.name }

func (r *rule) Observe(e *store.Event, now time.Time) (Firing, bool) {
	h, ok := r.match(e)
	if !ok {
		return Firing{}, false
	}
	key := h.key
	if key == "" {
		key = h.kind + ":" + h.value
	}
	if until, ok := r.muted[key]; ok {
		if now.Before(until) {
			return Firing{}, false
		}
		delete(r.muted, key)
	}
	cut := now.Add(-r.t.Window)
	var n int
	if r.distinct {
		set := r.items[key]
		if set == nil {
			if !r.room(now) {
				return Firing{}, false
			}
			set = map[string]time.Time{}
			r.items[key] = set
		}
		for it, at := range set {
			if !at.After(cut) {
				delete(set, it)
			}
		}
		set[h.item] = now
		n = len(set)
	} else {
		ts, exists := r.times[key]
		if !exists && !r.room(now) {
			return Firing{}, false
		}
		i := 0
		for i < len(ts) && !ts[i].After(cut) {
			i++
		}
		ts = append(ts[:0], ts[i:]...)
		ts = append(ts, now)
		if len(ts) > r.t.Threshold {
			ts = append(ts[:0], ts[len(ts)-r.t.Threshold:]...)
		}
		r.times[key] = ts
		n = len(ts)
	}
	if n < r.t.Threshold {
		return Firing{}, false
	}
	delete(r.times, key)
	delete(r.items, key)
	r.muted[key] = now.Add(max(r.t.Window, r.t.BanFor))
	return Firing{Detector: r.name, Kind: h.kind, Value: h.value, Count: n, Window: r.t.Window, BanFor: r.t.BanFor,
		Summary: r.describe(n, r.t.Window, h), Event: *e}, true
}

// room makes space for a new key, collecting expired state when full.
func (r *rule) room(now time.Time) bool {
	if len(r.times)+len(r.items)+len(r.muted) < maxKeys {
		return true
	}
	if now.Before(r.nextGC) {
		r.overflow.Add(1)
		return false
	}
	// Collecting is O(keys): at most once per tenth of a window (≥1s), so a
	// flood of new subjects cannot make every event pay for it.
	r.nextGC = now.Add(max(r.t.Window/10, time.Second))
	cut := now.Add(-r.t.Window)
	for k, ts := range r.times {
		if len(ts) == 0 || !ts[len(ts)-1].After(cut) {
			delete(r.times, k)
		}
	}
	for k, set := range r.items {
		newest := time.Time{}
		for _, at := range set {
			if at.After(newest) {
				newest = at
			}
		}
		if !newest.After(cut) {
			delete(r.items, k)
		}
	}
	for k, until := range r.muted {
		if !now.Before(until) {
			delete(r.muted, k)
		}
	}
	if len(r.times)+len(r.items)+len(r.muted) < maxKeys {
		return true
	}
	r.overflow.Add(1)
	return false
}

// account is what a failed sign-in names: the user id, or (for unknown
// accounts) the detail the identity service may add; "" when neither.
func account(e *store.Event) string {
	if e.UserID != "" {
		return e.UserID
	}
	return e.Detail["account"]
}

func every(n int, w time.Duration) string {
	return fmt.Sprintf("%d in %s", n, fmtDur(w))
}

func fmtDur(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// Detector names.
const (
	BruteForceIP      = "brute_force_ip"
	BruteForceAccount = "brute_force_account"
	StuffingIP        = "stuffing_ip"
	StuffingAccount   = "stuffing_account"
	Enumeration       = "enumeration"
	RefreshReuse      = "refresh_reuse"
	TokenForgery      = "token_forgery"
	ErrorSpike        = "error_spike"
)

// NewBruteForceIP counts failed sign-ins per client IP.
func NewBruteForceIP(t Threshold) Detector {
	return newRule(BruteForceIP, t, false, func(e *store.Event) (hit, bool) {
		return hit{kind: store.BanIP, value: e.IP}, e.Type == audit.LoginFailed && e.IP != ""
	}, func(n int, w time.Duration, _ hit) string { return "failed sign-ins: " + every(n, w) })
}

// NewBruteForceAccount counts failed sign-ins per account.
func NewBruteForceAccount(t Threshold) Detector {
	return newRule(BruteForceAccount, t, false, func(e *store.Event) (hit, bool) {
		return hit{kind: store.BanUser, value: e.UserID}, e.Type == audit.LoginFailed && e.UserID != ""
	}, func(n int, w time.Duration, _ hit) string {
		return "failed sign-ins against the account: " + every(n, w)
	})
}

// NewStuffingIP counts distinct accounts failing sign-in from one IP.
func NewStuffingIP(t Threshold) Detector {
	return newRule(StuffingIP, t, true, func(e *store.Event) (hit, bool) {
		a := account(e)
		return hit{kind: store.BanIP, value: e.IP, item: a}, e.Type == audit.LoginFailed && e.IP != "" && a != ""
	}, func(n int, w time.Duration, _ hit) string { return "distinct accounts failing sign-in: " + every(n, w) })
}

// NewStuffingAccount counts distinct IPs failing sign-in against one account.
func NewStuffingAccount(t Threshold) Detector {
	return newRule(StuffingAccount, t, true, func(e *store.Event) (hit, bool) {
		return hit{kind: store.BanUser, value: e.UserID, item: e.IP}, e.Type == audit.LoginFailed && e.UserID != "" && e.IP != ""
	}, func(n int, w time.Duration, _ hit) string {
		return "distinct addresses failing sign-in: " + every(n, w)
	})
}

// NewEnumeration counts distinct object ids denied (403) or not found (404)
// on one route for one user, or one IP when the caller is anonymous.
func NewEnumeration(t Threshold) Detector {
	return newRule(Enumeration, t, true, func(e *store.Event) (hit, bool) {
		if e.Type != audit.RequestDenied || e.Detail["object"] == "" || e.Detail["route"] == "" {
			return hit{}, false
		}
		if s := e.Detail["status"]; s != "403" && s != "404" {
			return hit{}, false
		}
		h := hit{kind: store.BanIP, value: e.IP, item: e.Detail["object"]}
		if e.UserID != "" {
			h.kind, h.value = store.BanUser, e.UserID
		}
		if h.value == "" {
			return hit{}, false
		}
		h.key = h.kind + ":" + h.value + "|" + e.Detail["route"]
		return h, true
	}, func(n int, w time.Duration, h hit) string {
		return "distinct object ids denied or not found on one route: " + every(n, w)
	})
}

// NewRefreshReuse fires on refresh-token reuse (a family revoked because an
// already-rotated token came back). The subject is the address that presented
// it: either the thief or a victim whose token was stolen — both must sign in
// again anyway, so a short ban costs the victim little and stops the thief.
func NewRefreshReuse(t Threshold) Detector {
	return newRule(RefreshReuse, t, false, func(e *store.Event) (hit, bool) {
		if e.Type != audit.RefreshTokenReused {
			return hit{}, false
		}
		if e.IP != "" {
			return hit{kind: store.BanIP, value: e.IP}, true
		}
		return hit{kind: store.BanSession, value: e.SessionID}, e.SessionID != ""
	}, func(n int, w time.Duration, _ hit) string { return "refresh token reused: " + every(n, w) })
}

// NewTokenForgery counts access tokens failing verification (not expiry) per IP.
func NewTokenForgery(t Threshold) Detector {
	return newRule(TokenForgery, t, false, func(e *store.Event) (hit, bool) {
		return hit{kind: store.BanIP, value: e.IP}, e.Type == audit.RequestDenied && e.Detail["reason"] == "invalid_token" && e.IP != ""
	}, func(n int, w time.Duration, _ hit) string { return "invalid access tokens: " + every(n, w) })
}

// Spike compares each window's error count with an exponentially weighted
// moving average of the previous windows.
type Spike struct {
	Window    time.Duration
	MinErrors int
	Factor    float64
	Baseline  time.Duration

	series map[string]*spikeSeries
	start  time.Time
}

type spikeSeries struct {
	count    int64
	baseline float64
	warm     bool
}

// Add counts n errors of a series ("5xx", "4xx") at now and returns the
// firings of any window that ended.
func (s *Spike) Add(series string, n int64, now time.Time) []Firing {
	out := s.roll(now)
	if s.series == nil {
		s.series = map[string]*spikeSeries{}
	}
	ss := s.series[series]
	if ss == nil {
		ss = &spikeSeries{}
		s.series[series] = ss
	}
	ss.count += n
	return out
}

// roll closes the current window if now is past it.
func (s *Spike) roll(now time.Time) []Firing {
	if s.start.IsZero() {
		s.start = now
		return nil
	}
	if now.Sub(s.start) < s.Window {
		return nil
	}
	windows := int64(now.Sub(s.start) / s.Window)
	s.start = s.start.Add(time.Duration(windows) * s.Window)
	alpha := 1 - math.Exp(-float64(s.Window)/float64(s.Baseline))
	var out []Firing
	for name, ss := range s.series {
		c := float64(ss.count)
		if ss.warm && ss.count >= int64(s.MinErrors) && c > s.Factor*ss.baseline {
			out = append(out, Firing{Detector: ErrorSpike, Value: name, Count: int(ss.count), Window: s.Window,
				Summary: fmt.Sprintf("%s responses: %d in %s, baseline %.1f", name, ss.count, fmtDur(s.Window), ss.baseline)})
		}
		if ss.warm {
			ss.baseline += alpha * (c - ss.baseline)
		} else {
			ss.baseline, ss.warm = c, true
		}
		// Windows without any traffic pull the baseline down too.
		for range min(windows-1, 1000) {
			ss.baseline -= alpha * ss.baseline
		}
		ss.count = 0
	}
	return out
}
