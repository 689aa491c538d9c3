package monitor

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// aggregator turns the stream of gateway denials into one row per kind,
// reason, route, status and caller per interval, with a count. Why: under a
// flood every rate-limited request would otherwise be a stored row and a log
// line — the flood would move from the gateway to the database. Audit events
// (sign-ins, reuse, bans) are not aggregated: the Recorder keeps each one.
type aggregator struct {
	interval time.Duration
	sink     EventSink
	log      *slog.Logger
	hook     *batcher
	now      func() time.Time

	mu       sync.Mutex
	rows     map[string]*store.Event
	counts   map[string]int
	overflow int
}

// maxRows bounds one interval's distinct rows; further denials are counted
// into a single overflow row.
const maxRows = 1000

func newAggregator(interval time.Duration, sink EventSink, log *slog.Logger, hook *batcher, now func() time.Time) *aggregator {
	return &aggregator{interval: interval, sink: sink, log: log, hook: hook, now: now, rows: map[string]*store.Event{}, counts: map[string]int{}}
}

func isDecision(t string) bool {
	return t == audit.RequestDenied || t == audit.RateLimited || t == audit.RequestBanned || t == audit.WAFBlocked
}

// add is the bus subscriber.
func (a *aggregator) add(_ context.Context, e store.Event) {
	if !isDecision(e.Type) {
		return
	}
	k := e.Type + "\x00" + e.Detail["reason"] + "\x00" + e.Detail["route"] + "\x00" + e.Detail["status"] + "\x00" + e.IP + "\x00" + e.UserID
	a.mu.Lock()
	defer a.mu.Unlock()
	if r, ok := a.rows[k]; ok {
		a.counts[k]++
		r.RequestID = e.RequestID // the last one, to find it in the logs
		return
	}
	if len(a.rows) >= maxRows {
		a.overflow++
		return
	}
	cp := e
	cp.Detail = map[string]string{}
	for _, f := range []string{"reason", "route", "status", "method"} {
		if v := e.Detail[f]; v != "" {
			cp.Detail[f] = v
		}
	}
	cp.Detail["first_at"] = e.Time.UTC().Format(time.RFC3339Nano)
	a.rows[k] = &cp
	a.counts[k] = 1
}

func (a *aggregator) run(ctx context.Context) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			a.flush(ctx)
		}
	}
}

// flush writes the interval's rows: one log line and one stored event each.
func (a *aggregator) flush(ctx context.Context) {
	a.mu.Lock()
	rows, counts, overflow := a.rows, a.counts, a.overflow
	a.rows, a.counts, a.overflow = map[string]*store.Event{}, map[string]int{}, 0
	a.mu.Unlock()
	now := a.now().UTC()
	out := make([]store.Event, 0, len(rows)+1)
	for k, r := range rows {
		e := *r
		e.Time = now
		e.Detail["count"] = strconv.Itoa(counts[k])
		out = append(out, e)
	}
	if overflow > 0 {
		out = append(out, store.Event{Type: audit.RequestDenied, Time: now, Detail: map[string]string{"reason": "overflow", "count": strconv.Itoa(overflow)}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Detail["count"] > out[j].Detail["count"] })
	for i := range out {
		e := &out[i]
		a.log.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("event", e.Type), slog.String("ip", e.IP), slog.String("user_id", e.UserID),
			slog.String("request_id", e.RequestID), slog.Any("detail", e.Detail))
		if a.sink != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := a.sink.InsertEvent(sctx, e); err != nil {
				a.log.WarnContext(ctx, "aggregated denial not stored", "error", err.Error())
			}
			cancel()
		}
		if a.hook != nil {
			a.hook.add(ctx, *e)
		}
	}
}
