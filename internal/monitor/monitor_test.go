package monitor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/alert"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type recorder struct {
	mu     sync.Mutex
	bans   []store.Ban
	alerts []alert.Firing
	events []store.Event
	stored []store.Event
}

func (r *recorder) Add(_ context.Context, b store.Ban) (store.Ban, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b.ID = fmt.Sprintf("ban%d", len(r.bans)+1)
	r.bans = append(r.bans, b)
	return b, nil
}

func (r *recorder) Check(ip, user, session string) (store.Ban, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bans {
		if (b.Kind == store.BanIP && b.Value == ip) || (b.Kind == store.BanUser && b.Value == user) || (b.Kind == store.BanSession && b.Value == session) {
			return b, true
		}
	}
	return store.Ban{}, false
}

func (r *recorder) Notify(f alert.Firing) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, f)
	return true
}

func (r *recorder) record(_ context.Context, e store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) InsertEvent(_ context.Context, e *store.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored = append(r.stored, *e)
	return nil
}

func (r *recorder) snapshot() (bans []store.Ban, alerts []alert.Firing, events, stored []store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(bans, r.bans...), append(alerts, r.alerts...), append(events, r.events...), append(stored, r.stored...)
}

func startMonitor(t *testing.T, mut func(c *config.Monitor)) (*Monitor, *recorder, *prometheus.Registry) {
	t.Helper()
	c := config.Default().Monitor
	c.DecisionInterval = config.Duration(50 * time.Millisecond)
	if mut != nil {
		mut(&c)
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	m, err := New(Options{Config: c, Bans: rec, Alerts: rec, Record: rec.record, Store: rec, Registerer: reg, StatsInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, rec, reg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSprayIsBannedOnceAndAlerted: a password spray from one address fires
// brute_force_ip once, bans the address, records the firing and the ban, and
// hands one firing to the alerts.
func TestSprayIsBannedOnceAndAlerted(t *testing.T) {
	m, rec, reg := startMonitor(t, nil)
	for i := range 100 {
		// Unknown accounts: only the per-IP brute-force detector can see it.
		m.Publish(store.Event{Type: audit.LoginFailed, IP: "192.0.2.50", Detail: map[string]string{"reason": "unknown_account", "n": fmt.Sprint(i)}})
	}
	waitFor(t, "ban", func() bool { b, _, _, _ := rec.snapshot(); return len(b) > 0 })
	time.Sleep(50 * time.Millisecond) // let the rest of the spray through the detectors
	bans, alerts, events, _ := rec.snapshot()
	if len(bans) != 1 || bans[0].Kind != store.BanIP || bans[0].Value != "192.0.2.50" || bans[0].Source != "detector:brute_force_ip" ||
		bans[0].ExpiresAt.Sub(bans[0].CreatedAt) != 15*time.Minute {
		t.Fatalf("bans %+v", bans)
	}
	if len(alerts) != 1 || alerts[0].Detector != BruteForceIP || alerts[0].Subject != "ip:192.0.2.50" || !alerts[0].Banned {
		t.Fatalf("alerts %+v", alerts)
	}
	var fired, banned int
	for _, e := range events {
		switch e.Type {
		case audit.DetectorFired:
			fired++
			if e.Detail["ban_id"] != "ban1" || e.IP != "192.0.2.50" {
				t.Fatalf("fired event %+v", e)
			}
		case audit.BanCreated:
			banned++
		}
	}
	if fired != 1 || banned != 1 {
		t.Fatalf("%d detector_fired, %d ban_created events", fired, banned)
	}
	if n := testutil.ToFloat64(m.metrics.firings.WithLabelValues(BruteForceIP)); n != 1 {
		t.Fatalf("firings metric %v", n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestAllowListIsNeverBanned: the detector still fires and alerts, but the
// allow-listed address is not banned.
func TestAllowListIsNeverBanned(t *testing.T) {
	m, rec, _ := startMonitor(t, func(c *config.Monitor) { c.AllowCIDRs = []string{"10.0.0.0/8", "2001:db8::1"} })
	for _, ip := range []string{"10.1.2.3", "::ffff:10.9.9.9", "2001:db8::1"} {
		for range 25 {
			m.Publish(store.Event{Type: audit.LoginFailed, IP: ip})
		}
	}
	waitFor(t, "alerts", func() bool { _, a, _, _ := rec.snapshot(); return len(a) == 3 })
	bans, alerts, _, _ := rec.snapshot()
	if len(bans) != 0 {
		t.Fatalf("allow-listed addresses banned: %+v", bans)
	}
	for _, a := range alerts {
		if a.Banned {
			t.Fatalf("alert says banned: %+v", a)
		}
	}
}

// TestAlertOnlyDetector: ban_for 0 means alert only.
func TestAlertOnlyDetector(t *testing.T) {
	m, rec, _ := startMonitor(t, func(c *config.Monitor) { c.Detectors.BruteForceIP.Disabled = true })
	for i := range 12 {
		m.Publish(store.Event{Type: audit.LoginFailed, IP: fmt.Sprintf("198.51.100.%d", i), UserID: "victim"})
	}
	waitFor(t, "alert", func() bool { _, a, _, _ := rec.snapshot(); return len(a) > 0 })
	bans, alerts, _, _ := rec.snapshot()
	if len(bans) != 0 || alerts[0].Detector != BruteForceAccount {
		t.Fatalf("bans %+v alerts %+v", bans, alerts)
	}
}

// TestDisabled: with the monitor disabled nothing fires.
func TestDisabled(t *testing.T) {
	m, rec, _ := startMonitor(t, func(c *config.Monitor) { c.Disabled = true })
	for range 100 {
		m.Publish(store.Event{Type: audit.LoginFailed, IP: "192.0.2.1"})
	}
	m.Publish(store.Event{Type: audit.RefreshTokenReused, IP: "192.0.2.1"})
	time.Sleep(100 * time.Millisecond)
	if bans, alerts, _, _ := rec.snapshot(); len(bans)+len(alerts) != 0 {
		t.Fatal("disabled monitor acted")
	}
}

// TestDecisionsAreAggregated: a flood of denials is stored as a handful of
// rows with counts, and allowed requests are not stored at all.
func TestDecisionsAreAggregated(t *testing.T) {
	m, rec, _ := startMonitor(t, nil)
	for range 5000 {
		m.Decide(gateway.Decision{Reason: "rate_limited_per_ip", Status: 429, Method: "GET", ClientIP: "192.0.2.7", RequestID: "r"})
	}
	for i := range 50 {
		m.Decide(gateway.Decision{Route: "note", Reason: "allowed", Status: 200, Method: "GET", ClientIP: "192.0.2.8", Params: map[string]string{"id": fmt.Sprint(i)}})
	}
	m.Decide(gateway.Decision{Route: "note", Reason: "rule_denied", Status: 403, Method: "GET", ClientIP: "192.0.2.8", UserID: "u1", Params: map[string]string{"id": "9"}})
	m.Decide(gateway.Decision{Route: "note", Reason: "allowed", Status: 404, Method: "GET", ClientIP: "192.0.2.8", UserID: "u1", Params: map[string]string{"id": "10"}})
	waitFor(t, "aggregated rows", func() bool {
		_, _, _, s := rec.snapshot()
		n := 0
		for _, e := range s {
			var c int
			fmt.Sscan(e.Detail["count"], &c)
			n += c
		}
		return n == 5002
	})
	_, _, _, stored := rec.snapshot()
	// The flood may straddle a few intervals: a few rows, never thousands.
	sums := map[string]int{}
	rows := map[string]store.Event{}
	for _, e := range stored {
		var n int
		fmt.Sscan(e.Detail["count"], &n)
		sums[e.Detail["reason"]] += n
		rows[e.Detail["reason"]] = e
	}
	if len(stored) > 20 || len(sums) != 3 {
		t.Fatalf("%d rows stored: %+v", len(stored), stored)
	}
	if e := rows["rate_limited_per_ip"]; e.Type != audit.RateLimited || sums["rate_limited_per_ip"] != 5000 || e.IP != "192.0.2.7" {
		t.Fatalf("rate-limited rows: %d requests, %+v", sums["rate_limited_per_ip"], e)
	}
	if e := rows["upstream_404"]; e.Type != audit.RequestDenied || e.UserID != "u1" || e.Detail["route"] != "note" || sums["upstream_404"] != 1 {
		t.Fatalf("404 row %+v", e)
	}
	if sums["rule_denied"] != 1 {
		t.Fatalf("403 rows %+v", rows["rule_denied"])
	}
	var reqs int64
	var limited int
	waitFor(t, "stats", func() bool {
		reqs, limited = 0, 0
		for _, p := range m.Stats() {
			reqs += p.Requests
			limited += p.RateLimited
		}
		return reqs == 5052 && limited == 5000
	})
}

// TestBusNeverBlocks: with subscribers stalled, Publish returns and counts.
func TestBusNeverBlocks(t *testing.T) {
	var b Bus
	release := make(chan struct{})
	b.Subscribe("slow", 4, func(context.Context, store.Event) { <-release }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	for range 100 {
		b.Publish(store.Event{Type: "x"})
	}
	if d := b.Dropped()["slow"]; d < 90 || d > 96 {
		t.Fatalf("dropped %d of 100 with a queue of 4", d)
	}
	close(release)
	cancel()
	<-done
}

func TestObjectID(t *testing.T) {
	long := string(make([]byte, 500))
	for _, tc := range []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"id": "42"}, "42"},
		{map[string]string{"b": "2", "a": "1"}, "1/2"},
		{map[string]string{"id": long}, long[:128]},
	} {
		if got := objectID(tc.in); got != tc.want {
			t.Errorf("objectID(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkDecideAllowed is the request path's cost for an allowed request.
func BenchmarkDecideAllowed(b *testing.B) {
	m, err := New(Options{Config: config.Default().Monitor})
	if err != nil {
		b.Fatal(err)
	}
	d := gateway.Decision{Route: "notes", Reason: "allowed", Status: 200, Method: "GET", ClientIP: "192.0.2.1", UserID: "u1"}
	b.ReportAllocs()
	for b.Loop() {
		m.Decide(d)
	}
}

// BenchmarkDecideDenied is the cost of a denial: building the event and
// offering it to the bus (queues full: the flood case).
func BenchmarkDecideDenied(b *testing.B) {
	m, err := New(Options{Config: config.Default().Monitor})
	if err != nil {
		b.Fatal(err)
	}
	d := gateway.Decision{Route: "notes", Reason: "rate_limited", Status: 429, Method: "GET", ClientIP: "192.0.2.1", UserID: "u1"}
	b.ReportAllocs()
	for b.Loop() {
		m.Decide(d)
	}
}

type onceClaimer struct {
	mu  sync.Mutex
	won map[string]bool
}

func (c *onceClaimer) Claim(_ context.Context, key string, _ time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.won[key] {
		return false, nil
	}
	c.won[key] = true
	return true, nil
}

// TestClaimsMakeOneReplicaAct: two replicas each see enough of a spread
// attack to fire; only the one that claims the subject bans and alerts.
func TestClaimsMakeOneReplicaAct(t *testing.T) {
	claims := &onceClaimer{won: map[string]bool{}}
	rec := &recorder{}
	var ms []*Monitor
	for range 2 {
		m, err := New(Options{Config: config.Default().Monitor, Bans: &noCheck{rec}, Alerts: rec, Claims: claims, Record: rec.record})
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		for i := range 20 {
			e := store.Event{Type: audit.LoginFailed, IP: "192.0.2.77", Detail: map[string]string{"n": fmt.Sprint(i)}}
			m.detect(t.Context(), e)
		}
	}
	bans, alerts, _, _ := rec.snapshot()
	if len(bans) != 1 || len(alerts) != 1 {
		t.Fatalf("%d bans, %d alerts; want one each", len(bans), len(alerts))
	}
}

// noCheck hides the recorder's Check, as if the ban had not reached this
// replica yet: only the claim can stop the second replica.
type noCheck struct{ r *recorder }

func (n *noCheck) Add(ctx context.Context, b store.Ban) (store.Ban, error) { return n.r.Add(ctx, b) }
func (n *noCheck) Check(string, string, string) (store.Ban, bool)          { return store.Ban{}, false }

type fakePoster struct {
	mu      sync.Mutex
	fail    int
	batches [][]any
}

func (p *fakePoster) Post(_ context.Context, kind string, v any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail > 0 {
		p.fail--
		return fmt.Errorf("receiver down")
	}
	if kind != "events" {
		return fmt.Errorf("kind %q", kind)
	}
	p.batches = append(p.batches, v.(map[string]any)["events"].([]any))
	return nil
}

func (p *fakePoster) events() []any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []any
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

// TestEventsWebhook: audit events go out one by one, gateway denials only as
// aggregated rows; a failing receiver is retried.
func TestEventsWebhook(t *testing.T) {
	hook := &fakePoster{fail: 1}
	c := config.Default().Monitor
	c.DecisionInterval = config.Duration(50 * time.Millisecond)
	m, err := New(Options{Config: c, EventsWebhook: hook})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	m.Publish(store.Event{Type: audit.LoginSucceeded, UserID: "u1"})
	for range 100 {
		m.Decide(gateway.Decision{Reason: "rate_limited_global", Status: 429, ClientIP: "192.0.2.3"})
	}
	waitFor(t, "webhook batches", func() bool {
		n := 0
		for _, e := range hook.events() {
			if w := e.(wireEvent); w.Type == audit.RateLimited {
				var c int
				fmt.Sscan(w.Detail["count"], &c)
				n += c
			}
		}
		return n == 100
	})
	var login, rows int
	for _, e := range hook.events() {
		switch e.(wireEvent).Type {
		case audit.LoginSucceeded:
			login++
		case audit.RateLimited:
			rows++
		}
	}
	if login != 1 || rows > 10 {
		t.Fatalf("%d login events, %d rate-limited rows (want 1 and a few aggregated rows)", login, rows)
	}
}
