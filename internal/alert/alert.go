package alert

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Firing is one detector firing, as the monitor reports it.
type Firing struct {
	Detector string    // e.g. "brute_force_ip"
	Subject  string    // e.g. "ip:203.0.113.7"; "" for whole-system detectors
	Summary  string    // one line for people
	Banned   bool      // the subject was banned
	At       time.Time // when it fired
}

// Subject is one subject within a grouped alert.
type Subject struct {
	Subject string `json:"subject"`
	Count   int    `json:"count"`
	Summary string `json:"summary"`
	Banned  bool   `json:"banned"`
}

// Alert is what the sinks deliver: every firing of one detector within a
// group window.
type Alert struct {
	ID       string    `json:"id"`
	Detector string    `json:"detector"`
	Title    string    `json:"title"`
	Count    int       `json:"count"` // firings in this alert
	Bans     int       `json:"bans"`  // of which banned their subject
	Subjects []Subject `json:"subjects"`
	// MoreSubjects is how many subjects were left out (at most MaxSubjects are listed).
	MoreSubjects int       `json:"more_subjects,omitempty"`
	FirstAt      time.Time `json:"first_at"`
	LastAt       time.Time `json:"last_at"`
}

// MaxSubjects is how many subjects one alert lists.
const MaxSubjects = 20

// maxExtra bounds the memory spent counting unlisted subjects in one group.
const maxExtra = 10000

// Sink delivers alerts somewhere.
type Sink interface {
	Name() string // "webhook", "slack", "email": a metric label
	Deliver(ctx context.Context, a Alert) error
}

// Options configure a Dispatcher.
type Options struct {
	// Sinks receive every alert. None: alerts are only recorded (OnAlert).
	Sinks []Sink
	// GroupWait: firings of one detector within this time of the first become
	// one alert. 0 → sent at the next tick.
	GroupWait time.Duration
	// RepeatInterval: one detector alerts at most this often; firings in
	// between are counted into the next alert. 0 → no spacing beyond GroupWait.
	RepeatInterval time.Duration
	// MaxPerHour caps alerts across detectors (a token bucket). 0 → 30.
	MaxPerHour int
	// Retries per sink per alert after the first attempt. 0 → none.
	Retries int
	// Backoff is the first retry delay, doubling, at most MaxBackoff. 0 → 1s.
	Backoff    time.Duration
	MaxBackoff time.Duration // 0 → 1m
	// QueueSize bounds Notify's queue. 0 → 1024.
	QueueSize int
	// OnAlert, optional, is called once per alert before delivery (the
	// monitor records it as an audit event).
	OnAlert func(ctx context.Context, a Alert)
	// OnDelivery, optional, is called per sink per alert with "delivered",
	// "failed" (retries exhausted) or "retried".
	OnDelivery func(sink, outcome string)
	// OnDrop, optional, is called when a firing or an alert is dropped
	// ("queue_full", "rate_limited").
	OnDrop func(reason string)
	Now    func() time.Time
	Logger *slog.Logger
}

// Dispatcher groups firings into alerts and delivers them.
type Dispatcher struct {
	opts    Options
	in      chan Firing
	groups  map[string]*group
	tokens  float64
	refill  time.Time
	wg      sync.WaitGroup
	dropped atomic.Int64
}

type group struct {
	pending  *Alert
	subjects map[string]*Subject
	extra    map[string]bool // subjects beyond MaxSubjects, counted up to maxExtra
	flushAt  time.Time
	lastSent time.Time
}

// New returns a Dispatcher; call Run to start it.
func New(opts Options) *Dispatcher {
	if opts.MaxPerHour <= 0 {
		opts.MaxPerHour = 30
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{opts: opts, in: make(chan Firing, opts.QueueSize), groups: map[string]*group{}, tokens: float64(opts.MaxPerHour)}
}

// Notify queues a firing. It never blocks: with the queue full the firing is
// dropped and counted, and false returned.
func (d *Dispatcher) Notify(f Firing) bool {
	select {
	case d.in <- f:
		return true
	default:
		d.dropped.Add(1)
		if d.opts.OnDrop != nil {
			d.opts.OnDrop("queue_full")
		}
		return false
	}
}

// Run groups and sends until ctx ends, then waits for deliveries in flight
// (which stop retrying once ctx is done).
func (d *Dispatcher) Run(ctx context.Context) {
	tick := min(max(d.opts.GroupWait/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	defer d.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-d.in:
			d.add(f)
		case <-t.C:
			d.flush(ctx, d.opts.Now())
		}
	}
}

func (d *Dispatcher) add(f Firing) {
	if f.At.IsZero() {
		f.At = d.opts.Now()
	}
	g := d.groups[f.Detector]
	if g == nil {
		g = &group{}
		d.groups[f.Detector] = g
	}
	if g.pending == nil {
		g.pending = &Alert{Detector: f.Detector, FirstAt: f.At}
		g.subjects, g.extra = map[string]*Subject{}, map[string]bool{}
		g.flushAt = f.At.Add(d.opts.GroupWait)
		if !g.lastSent.IsZero() {
			if next := g.lastSent.Add(d.opts.RepeatInterval); next.After(g.flushAt) {
				g.flushAt = next
			}
		}
	}
	a := g.pending
	a.Count++
	a.LastAt = f.At
	if f.Banned {
		a.Bans++
	}
	if s, ok := g.subjects[f.Subject]; ok {
		s.Count++
		s.Summary, s.Banned = f.Summary, s.Banned || f.Banned
	} else if len(g.subjects) < MaxSubjects {
		g.subjects[f.Subject] = &Subject{Subject: f.Subject, Count: 1, Summary: f.Summary, Banned: f.Banned}
	} else if !g.extra[f.Subject] && len(g.extra) < maxExtra {
		g.extra[f.Subject] = true
		a.MoreSubjects++
	}
}

// flush sends every group whose time has come.
func (d *Dispatcher) flush(ctx context.Context, now time.Time) {
	names := make([]string, 0, len(d.groups))
	for n, g := range d.groups {
		if g.pending != nil && !now.Before(g.flushAt) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		g := d.groups[n]
		a := *g.pending
		for _, s := range g.subjects {
			a.Subjects = append(a.Subjects, *s)
		}
		sort.Slice(a.Subjects, func(i, j int) bool {
			if a.Subjects[i].Count != a.Subjects[j].Count {
				return a.Subjects[i].Count > a.Subjects[j].Count
			}
			return a.Subjects[i].Subject < a.Subjects[j].Subject
		})
		g.pending, g.subjects, g.extra, g.lastSent = nil, nil, nil, now
		if !d.take(now) {
			d.dropped.Add(1)
			if d.opts.OnDrop != nil {
				d.opts.OnDrop("rate_limited")
			}
			d.opts.Logger.Warn("alert dropped: alerts.max_per_hour reached", "detector", a.Detector, "count", a.Count)
			continue
		}
		a.ID = rand.Text()
		a.Title = title(a)
		if d.opts.OnAlert != nil {
			d.opts.OnAlert(ctx, a)
		}
		for _, s := range d.opts.Sinks {
			d.wg.Go(func() { d.deliver(ctx, s, a) })
		}
	}
}

// take spends one token of the hourly budget.
func (d *Dispatcher) take(now time.Time) bool {
	if !d.refill.IsZero() {
		d.tokens += now.Sub(d.refill).Hours() * float64(d.opts.MaxPerHour)
		d.tokens = min(d.tokens, float64(d.opts.MaxPerHour))
	}
	d.refill = now
	if d.tokens < 1 {
		return false
	}
	d.tokens--
	return true
}

// deliver tries one sink, retrying with exponential backoff a bounded number
// of times.
func (d *Dispatcher) deliver(ctx context.Context, s Sink, a Alert) {
	wait := d.opts.Backoff
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.Deliver(actx, a)
		cancel()
		if err == nil {
			d.outcome(s.Name(), "delivered")
			return
		}
		if attempt >= d.opts.Retries || ctx.Err() != nil {
			d.outcome(s.Name(), "failed")
			d.opts.Logger.Error("alert not delivered", "sink", s.Name(), "alert_id", a.ID, "attempts", attempt+1, "error", err.Error())
			return
		}
		d.outcome(s.Name(), "retried")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			d.outcome(s.Name(), "failed")
			return
		case <-t.C:
		}
		wait = min(wait*2, d.opts.MaxBackoff)
	}
}

func (d *Dispatcher) outcome(sink, o string) {
	if d.opts.OnDelivery != nil {
		d.opts.OnDelivery(sink, o)
	}
}

// Dropped is the number of firings and alerts dropped (queue full, rate limit).
func (d *Dispatcher) Dropped() int64 { return d.dropped.Load() }

func title(a Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Gatehouse: %s fired %d time", a.Detector, a.Count)
	if a.Count != 1 {
		b.WriteString("s")
	}
	if n := len(a.Subjects) + a.MoreSubjects; n > 0 && !(n == 1 && a.Subjects[0].Subject == "") {
		fmt.Fprintf(&b, " for %d subject", n)
		if n != 1 {
			b.WriteString("s")
		}
	}
	if a.Bans > 0 {
		fmt.Fprintf(&b, ", %d banned", a.Bans)
	}
	return b.String()
}

// Text renders a for people (Slack, email).
func Text(a Alert) string {
	var b strings.Builder
	b.WriteString(a.Title)
	fmt.Fprintf(&b, "\n%s – %s\n", a.FirstAt.UTC().Format(time.RFC3339), a.LastAt.UTC().Format(time.RFC3339))
	for _, s := range a.Subjects {
		fmt.Fprintf(&b, "• %s ×%d: %s", orDash(s.Subject), s.Count, s.Summary)
		if s.Banned {
			b.WriteString(" (banned)")
		}
		b.WriteString("\n")
	}
	if a.MoreSubjects > 0 {
		fmt.Fprintf(&b, "… and %d more\n", a.MoreSubjects)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
