package revoke

import (
	"context"
	"encoding/json"
	"github.com/gatehouse-dev/gatehouse/internal/redisfeed"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/redis/go-redis/v9"
)

// Source lists sessions revoked since a time; *store.DB is one.
type Source interface {
	RevokedSince(ctx context.Context, since time.Time, limit int) ([]store.RevokedSession, error)
}

// Options configure a List.
type Options struct {
	// TTL is how long a revoked session stays listed: the longest an access
	// token lives plus clock skew. Required.
	TTL time.Duration
	// Source, optional, is polled every PollInterval for revocations made
	// elsewhere.
	Source       Source
	PollInterval time.Duration // 0 → 500ms
	// Redis, optional, carries revocations between replicas at once.
	Redis   redis.UniversalClient
	Channel string // 0 → "gatehouse:revocations"
	Now     func() time.Time
	Logger  *slog.Logger
}

// List is the set of revoked session ids.
type List struct {
	opts Options
	mu   sync.RWMutex
	m    map[string]time.Time // sid → listed until
}

// New returns an empty list; call Run to start polling and subscribing.
func New(opts Options) *List {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.Channel == "" {
		opts.Channel = "gatehouse:revocations"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &List{opts: opts, m: make(map[string]time.Time)}
}

// IsRevoked reports whether sid is listed.
func (l *List) IsRevoked(sid string) bool {
	l.mu.RLock()
	until, ok := l.m[sid]
	l.mu.RUnlock()
	return ok && l.opts.Now().Before(until)
}

// Revoke lists sids locally at once and tells the other replicas. The until
// argument is ignored in favour of now+TTL: every replica uses its own TTL.
func (l *List) Revoke(ctx context.Context, sids []string, _ time.Time) {
	if len(sids) == 0 {
		return
	}
	l.add(sids)
	if l.opts.Redis != nil {
		b, _ := json.Marshal(sids)
		// Publishing never blocks the request for long; the store poll is the
		// safety net if it fails.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := l.opts.Redis.Publish(pctx, l.opts.Channel, b).Err(); err != nil {
			l.opts.Logger.Warn("publish revocation", "error", err.Error())
		}
	}
}

func (l *List) add(sids []string) {
	until := l.opts.Now().Add(l.opts.TTL)
	l.mu.Lock()
	for _, s := range sids {
		if s != "" && len(s) <= 128 {
			l.m[s] = until
		}
	}
	l.mu.Unlock()
}

// Len is the number of listed sessions (including expired ones not yet swept).
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}

// Sync loads revocations from the source once: everything revoked within TTL
// before now on the first call, then since the last call (with an overlap for
// clock skew between the replicas that wrote revoked_at).
func (l *List) Sync(ctx context.Context, since time.Time) (time.Time, error) {
	if l.opts.Source == nil {
		return since, nil
	}
	for {
		got, err := l.opts.Source.RevokedSince(ctx, since, 1000)
		if err != nil {
			return since, err
		}
		ids := make([]string, 0, len(got))
		for _, r := range got {
			ids = append(ids, r.ID)
			if r.RevokedAt.After(since) {
				since = r.RevokedAt
			}
		}
		l.add(ids)
		if len(got) < 1000 {
			return since, nil
		}
	}
}

// Run polls the source, listens to Redis and sweeps expired entries until ctx
// ends. It loads the recent past first, so a replica that starts after a
// revocation still refuses the session.
func (l *List) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if l.opts.Redis != nil {
		wg.Go(func() { l.subscribe(ctx) })
	}
	since := l.opts.Now().Add(-l.opts.TTL)
	t := time.NewTicker(l.opts.PollInterval)
	defer t.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		next, err := l.Sync(ctx, since)
		if err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("poll revocations", "error", err.Error())
		}
		// Overlap by 5s: revoked_at comes from the clock of whichever process
		// revoked, which may trail ours.
		since = next.Add(-5 * time.Second)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-sweep.C:
			l.sweep()
		case <-t.C:
		}
	}
}

func (l *List) sweep() {
	now := l.opts.Now()
	l.mu.Lock()
	for s, until := range l.m {
		if !now.Before(until) {
			delete(l.m, s)
		}
	}
	l.mu.Unlock()
}

func (l *List) subscribe(ctx context.Context) {
	redisfeed.Follow(ctx, l.opts.Redis, l.opts.Channel, "revocations", l.opts.Logger, func(payload string) {
		var sids []string
		if err := json.Unmarshal([]byte(payload), &sids); err != nil || len(sids) > 10000 {
			l.opts.Logger.Warn("bad revocation message", "error", "not a list of session ids")
			return
		}
		l.add(sids)
	})
}
