package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/alert"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Banner makes bans and answers whether a subject is already banned (ban.List).
type Banner interface {
	Add(ctx context.Context, b store.Ban) (store.Ban, error)
	Check(ip, user, session string) (store.Ban, bool)
}

// Notifier takes firings for alerting (alert.Dispatcher).
type Notifier interface {
	Notify(f alert.Firing) bool
}

// EventSink stores events (*store.DB).
type EventSink interface {
	InsertEvent(ctx context.Context, e *store.Event) error
}

// Poster sends a batch somewhere (alert.Webhook).
type Poster interface {
	Post(ctx context.Context, kind string, v any) error
}

// Options configure a Monitor.
type Options struct {
	// Config is the monitor section. Its zero value disables nothing but has
	// no detectors configured; pass config.Default().Monitor for defaults.
	Config config.Monitor
	// Bans receives detector bans. nil: detectors alert only.
	Bans Banner
	// Alerts receives firings. nil: no alerts.
	Alerts Notifier
	// Claims, optional, makes one replica act on an attack several detect
	// (RedisClaimer when the cache is Redis). nil: this replica always acts,
	// unless the subject is already banned.
	Claims Claimer
	// Record writes audit events (detector firings, bans) — the audit
	// Recorder, which logs, stores and publishes them back onto the bus. nil: not recorded.
	Record func(ctx context.Context, e store.Event)
	// Store keeps aggregated gateway denials. nil: not stored.
	Store EventSink
	// Logger logs aggregated gateway denials as JSON lines and the monitor's
	// own warnings. nil: discarded.
	Logger *slog.Logger
	// EventsWebhook, optional, receives audit events and aggregated denials in batches.
	EventsWebhook Poster
	// Registerer gets the monitor's metrics. nil: not registered.
	Registerer prometheus.Registerer
	// StatsInterval is the width of one point of the live charts. 0 → 10s.
	StatsInterval time.Duration
	// Now is the clock. nil → time.Now.
	Now func() time.Time
}

// Monitor is the event stream and the detectors that watch it. It implements
// gateway.Decisions (the request path: counters and a non-blocking publish)
// and receives audit events through Publish.
type Monitor struct {
	opts      Options
	bus       Bus
	detectors []Detector
	spike     *Spike
	allow     []netip.Prefix
	log       *slog.Logger

	// request-path counters, swapped out every StatsInterval
	total, err4xx, err5xx atomic.Int64

	stats   *stats
	agg     *aggregator
	hook    *batcher
	metrics *metrics
	banned  map[string]time.Time // subjects banned by detectors → until (detector goroutine only)
}

var _ gateway.Decisions = (*Monitor)(nil)

// New builds the monitor from its config.
func New(opts Options) (*Monitor, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := opts.Config
	m := &Monitor{opts: opts, log: opts.Logger, stats: newStats(90), banned: map[string]time.Time{}}
	for _, s := range c.AllowCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("monitor: allow_cidrs: %q is not a CIDR", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		m.allow = append(m.allow, p.Masked())
	}
	if !c.Disabled {
		d := c.Detectors
		th := func(x config.Detector) Threshold {
			return Threshold{Threshold: x.Threshold, Window: x.Window.D(), BanFor: x.BanFor.D()}
		}
		for _, x := range []struct {
			cfg config.Detector
			mk  func(Threshold) Detector
		}{
			{d.BruteForceIP, NewBruteForceIP}, {d.BruteForceAccount, NewBruteForceAccount},
			{d.StuffingIP, NewStuffingIP}, {d.StuffingAccount, NewStuffingAccount},
			{d.Enumeration, NewEnumeration}, {d.RefreshReuse, NewRefreshReuse}, {d.TokenForgery, NewTokenForgery},
		} {
			if !x.cfg.Disabled && x.cfg.Threshold > 0 && x.cfg.Window > 0 {
				m.detectors = append(m.detectors, x.mk(th(x.cfg)))
			}
		}
		if sp := d.ErrorSpike; !sp.Disabled && sp.Window > 0 && sp.Baseline > 0 {
			m.spike = &Spike{Window: sp.Window.D(), MinErrors: sp.MinErrors, Factor: sp.Factor, Baseline: sp.Baseline.D()}
		}
	}
	var err error
	if m.metrics, err = newMetrics(opts.Registerer, m); err != nil {
		return nil, err
	}
	size := c.QueueSize
	if size <= 0 {
		size = 4096
	}
	if opts.EventsWebhook != nil {
		m.hook = newBatcher(opts.EventsWebhook, m.log, m.metrics)
	}
	interval := c.DecisionInterval.D()
	if interval <= 0 {
		interval = time.Minute
	}
	m.agg = newAggregator(interval, opts.Store, opts.Logger, m.hook, opts.Now)
	dropped := func(name string) func() {
		c := m.metrics.dropped.WithLabelValues(name)
		return c.Inc
	}
	m.bus.Subscribe("detectors", size, m.detect, dropped("detectors"))
	m.bus.Subscribe("decisions", size, m.agg.add, dropped("decisions"))
	if m.hook != nil {
		m.bus.Subscribe("events_webhook", size, m.hook.add, dropped("events_webhook"))
	}
	return m, nil
}

// Publish puts an audit event on the bus (the audit Recorder's hook). It
// never blocks.
func (m *Monitor) Publish(e store.Event) { m.bus.Publish(e) }

// Decide implements gateway.Decisions. Allowed requests only touch counters;
// denials (and 403/404 answers on routes with object ids) are published.
func (m *Monitor) Decide(d gateway.Decision) {
	m.total.Add(1)
	switch {
	case d.Status >= 500:
		m.err5xx.Add(1)
	case d.Status >= 400:
		m.err4xx.Add(1)
	}
	reason := d.Reason
	if reason == "allowed" || reason == "preflight" {
		if (d.Status != 403 && d.Status != 404) || len(d.Params) == 0 {
			return
		}
		reason = "upstream_" + strconv.Itoa(d.Status)
	}
	typ := audit.RequestDenied
	switch {
	case strings.HasPrefix(reason, "rate_limited"):
		typ = audit.RateLimited
	case reason == "banned":
		typ = audit.RequestBanned
	case strings.HasPrefix(reason, "waf"):
		typ = audit.WAFBlocked
	}
	detail := map[string]string{"reason": reason, "status": strconv.Itoa(d.Status), "method": d.Method}
	if d.Route != "" {
		detail["route"] = d.Route
	}
	if obj := objectID(d.Params); obj != "" {
		detail["object"] = obj
	}
	m.bus.Publish(store.Event{Type: typ, Time: m.opts.Now().UTC(), UserID: d.UserID, SessionID: d.SessionID, IP: d.ClientIP, RequestID: d.RequestID, Detail: detail})
}

// objectID joins a route's path parameters (in name order) into one id,
// clipped so a hostile path cannot bloat the detectors' memory.
func objectID(params map[string]string) string {
	switch len(params) {
	case 0:
		return ""
	case 1:
		for _, v := range params {
			return clip(v, 128)
		}
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(params[k])
	}
	return clip(b.String(), 128)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Run runs the bus, the aggregator, the stats ticker and the webhook batcher until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { m.bus.Run(ctx) })
	wg.Go(func() { m.agg.run(ctx) })
	if m.hook != nil {
		wg.Go(func() { m.hook.run(ctx) })
	}
	t := time.NewTicker(m.opts.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			m.tick(ctx, m.opts.Now())
		}
	}
}

// tick closes one stats point and feeds the spike detector.
func (m *Monitor) tick(ctx context.Context, now time.Time) {
	total, e4, e5 := m.total.Swap(0), m.err4xx.Swap(0), m.err5xx.Swap(0)
	m.stats.close(now, total, e5)
	if m.spike == nil {
		return
	}
	var fs []Firing
	fs = append(fs, m.spike.Add("5xx", e5, now)...)
	fs = append(fs, m.spike.Add("4xx", e4, now)...)
	for _, f := range fs {
		m.respond(ctx, f)
	}
}

// detect is the bus subscriber that runs the detectors (one goroutine).
func (m *Monitor) detect(ctx context.Context, e store.Event) {
	m.stats.count(&e)
	now := m.opts.Now()
	for _, d := range m.detectors {
		if f, ok := d.Observe(&e, now); ok {
			m.respond(ctx, f)
		}
	}
}

// Allowed reports whether ip is on the allow-list.
func (m *Monitor) Allowed(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return slices.ContainsFunc(m.allow, func(p netip.Prefix) bool { return p.Contains(a) })
}

// respond acts on a firing: ban (unless alert-only or allow-listed), record,
// alert.
func (m *Monitor) respond(ctx context.Context, f Firing) {
	m.metrics.firings.WithLabelValues(f.Detector).Inc()
	now := m.opts.Now()
	if until, ok := m.bannedUntil(f); ok && now.Before(until) {
		// Another detector already banned this subject for the same attack (a
		// spray trips stuffing and brute force): one ban, one alert.
		m.log.DebugContext(ctx, "detector fired for a subject already banned", "detector", f.Detector, "subject", f.Subject())
		return
	}
	if m.alreadyBanned(f) {
		m.log.DebugContext(ctx, "detector fired for a subject banned elsewhere", "detector", f.Detector, "subject", f.Subject())
		return
	}
	if m.opts.Claims != nil {
		key := f.Subject()
		if f.Kind == "" {
			key = f.Detector + ":" + f.Value
		}
		won, err := m.opts.Claims.Claim(ctx, key, max(f.Window, f.BanFor))
		if err != nil {
			// Acting twice beats not acting: a lost claim store must not
			// silence detection.
			m.log.WarnContext(ctx, "claim detector firing", "detector", f.Detector, "error", err.Error())
		} else if !won {
			m.log.DebugContext(ctx, "another replica acts on this firing", "detector", f.Detector, "subject", f.Subject())
			return
		}
	}
	banned, banID := false, ""
	if f.BanFor > 0 && f.Kind != "" && m.opts.Bans != nil {
		switch {
		case f.Kind == store.BanIP && m.Allowed(f.Value):
			// Why: allow-listed networks (offices, health checkers, NAT of
			// a partner) must never be locked out automatically; they are
			// still recorded and alerted so a person decides.
			f.Summary += " (allow-listed: not banned)"
		default:
			b, err := m.opts.Bans.Add(ctx, store.Ban{Kind: f.Kind, Value: f.Value, Reason: f.Detector + ": " + f.Summary,
				Source: "detector:" + f.Detector, CreatedAt: now.UTC(), ExpiresAt: now.UTC().Add(f.BanFor)})
			if err != nil {
				m.log.ErrorContext(ctx, "ban not made", "detector", f.Detector, "error", err.Error())
			} else {
				banned, banID = true, b.ID
				m.rememberBan(f.Subject(), b.ExpiresAt, now)
				m.metrics.bans.WithLabelValues(f.Detector).Inc()
				if m.opts.Record != nil {
					m.opts.Record(ctx, banEvent(audit.BanCreated, b))
				}
			}
		}
	}
	if m.opts.Record != nil {
		e := store.Event{Type: audit.DetectorFired, RequestID: f.Event.RequestID, Detail: map[string]string{
			"detector": f.Detector, "subject": f.Subject(), "count": strconv.Itoa(f.Count), "window": fmtDur(f.Window),
			"summary": f.Summary, "banned": strconv.FormatBool(banned),
		}}
		if banID != "" {
			e.Detail["ban_id"] = banID
		}
		switch f.Kind {
		case store.BanIP:
			e.IP = f.Value
		case store.BanUser:
			e.UserID, e.IP = f.Value, f.Event.IP
		case store.BanSession:
			e.SessionID, e.IP = f.Value, f.Event.IP
		}
		m.opts.Record(ctx, e)
	}
	if m.opts.Alerts != nil {
		m.opts.Alerts.Notify(alert.Firing{Detector: f.Detector, Subject: f.Subject(), Summary: f.Summary, Banned: banned, At: now})
	}
}

// rememberBan notes a subject this monitor banned, so other detectors firing
// for it during the ban do not ban and alert again. Bounded: expired entries
// are collected when it is full, and if still full nothing is remembered.
func (m *Monitor) rememberBan(subject string, until, now time.Time) {
	if len(m.banned) >= maxKeys {
		for s, u := range m.banned {
			if !now.Before(u) {
				delete(m.banned, s)
			}
		}
		if len(m.banned) >= maxKeys {
			return
		}
	}
	m.banned[subject] = until
}

// banEvent is the audit event for a ban made or lifted.
func banEvent(typ string, b store.Ban) store.Event {
	e := store.Event{Type: typ, Detail: map[string]string{"ban_id": b.ID, "kind": b.Kind, "value": b.Value, "reason": b.Reason,
		"source": b.Source, "expires_at": b.ExpiresAt.UTC().Format(time.RFC3339)}}
	switch b.Kind {
	case store.BanIP:
		e.IP = b.Value
	case store.BanUser:
		e.UserID = b.Value
	case store.BanSession:
		e.SessionID = b.Value
	}
	return e
}

// BanEvent is the audit event for a ban made or lifted by an operator.
func BanEvent(typ string, b store.Ban, by string) store.Event {
	e := banEvent(typ, b)
	if by != "" {
		e.Detail["by"] = by
	}
	return e
}

// Stats returns the live-chart points, oldest first.
func (m *Monitor) Stats() []Point { return m.stats.points() }

// Dropped returns the events dropped per bus subscriber.
func (m *Monitor) Dropped() map[string]int64 { return m.bus.Dropped() }

// bannedUntil looks a firing's subject up in m.banned. Whole-system firings
// (error spikes, from the stats goroutine) have no subject and never touch the
// map, which belongs to the detector goroutine.
func (m *Monitor) bannedUntil(f Firing) (time.Time, bool) {
	if f.Kind == "" {
		return time.Time{}, false
	}
	u, ok := m.banned[f.Subject()]
	return u, ok
}

// alreadyBanned reports whether the firing's subject is under a ban in force
// (made by another replica, an operator, or earlier).
func (m *Monitor) alreadyBanned(f Firing) bool {
	if m.opts.Bans == nil || f.BanFor <= 0 {
		return false
	}
	var ok bool
	switch f.Kind {
	case store.BanIP:
		_, ok = m.opts.Bans.Check(f.Value, "", "")
	case store.BanUser:
		_, ok = m.opts.Bans.Check("", f.Value, "")
	case store.BanSession:
		_, ok = m.opts.Bans.Check("", "", f.Value)
	}
	return ok
}
