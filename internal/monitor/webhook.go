package monitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// batcher sends events to the events webhook in batches of at most 100, at
// least once a second, each batch retried at most three times.
type batcher struct {
	post    Poster
	log     *slog.Logger
	metrics *metrics
	mu      sync.Mutex
	buf     []store.Event
	kick    chan struct{}
}

const (
	batchSize = 100
	maxBuffer = 10_000 // beyond, events are dropped and counted
)

func newBatcher(p Poster, log *slog.Logger, m *metrics) *batcher {
	return &batcher{post: p, log: log, metrics: m, kick: make(chan struct{}, 1)}
}

// add queues e; gateway decisions are skipped here because they arrive from
// the aggregator instead, already counted.
func (b *batcher) add(_ context.Context, e store.Event) {
	if isDecision(e.Type) && e.Detail["count"] == "" {
		return
	}
	b.mu.Lock()
	if len(b.buf) >= maxBuffer {
		b.mu.Unlock()
		b.metrics.dropped.WithLabelValues("events_webhook").Inc()
		return
	}
	b.buf = append(b.buf, e)
	full := len(b.buf) >= batchSize
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

type wireEvent struct {
	ID        string            `json:"id,omitempty"`
	Type      string            `json:"type"`
	Time      time.Time         `json:"time"`
	UserID    string            `json:"user_id,omitempty"`
	SessionID string            `json:"session_id,omitempty"`
	IP        string            `json:"ip,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// Wire is an event's JSON form (admin API, events webhook).
func Wire(e store.Event) any {
	return wireEvent{ID: e.ID, Type: e.Type, Time: e.Time, UserID: e.UserID, SessionID: e.SessionID, IP: e.IP, RequestID: e.RequestID, Detail: e.Detail}
}

func (b *batcher) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			b.send(sctx)
			cancel()
			return
		case <-t.C:
		case <-b.kick:
		}
		b.send(ctx)
	}
}

func (b *batcher) send(ctx context.Context) {
	for {
		b.mu.Lock()
		n := min(len(b.buf), batchSize)
		batch := append([]store.Event(nil), b.buf[:n]...)
		b.buf = b.buf[n:]
		b.mu.Unlock()
		if n == 0 {
			return
		}
		wire := make([]any, len(batch))
		for i, e := range batch {
			wire[i] = Wire(e)
		}
		var err error
		for attempt := range 3 {
			if err = b.post.Post(ctx, "events", map[string]any{"events": wire}); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		if err != nil {
			b.metrics.webhookFailed.Add(float64(len(batch)))
			b.log.WarnContext(ctx, "events webhook failed; batch dropped", "events", len(batch), "error", err.Error())
		}
	}
}
