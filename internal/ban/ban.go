package ban

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-dev/gatehouse/internal/redisfeed"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/redis/go-redis/v9"
)

// Store keeps bans; *store.DB is one.
type Store interface {
	InsertBan(ctx context.Context, b *store.Ban) error
	LiftBan(ctx context.Context, id string, now time.Time) (*store.Ban, error)
	ActiveBans(ctx context.Context, now time.Time, limit int) ([]store.Ban, error)
	BansChangedSince(ctx context.Context, since time.Time, limit int) ([]store.Ban, error)
}

// Errors.
var (
	// ErrInvalid means a ban's kind, value or duration is not acceptable.
	ErrInvalid = errors.New("invalid ban")
	// ErrNotFound means there is no active ban with that id.
	ErrNotFound = errors.New("ban not found")
)

// Limits on what a ban may be.
const (
	MaxDuration = 30 * 24 * time.Hour // bans are temporary by design
	maxListed   = 100_000             // in-memory entries; beyond, the oldest expiring are dropped
)

// Options configure a List.
type Options struct {
	// Store is the record of bans. Required.
	Store Store
	// Redis, optional, carries bans and unbans between replicas at once.
	Redis redis.UniversalClient
	// Channel is the Redis pub/sub channel. "" → "gatehouse:bans".
	Channel string
	// PollInterval is how often the store is polled for changes. 0 → 1s.
	PollInterval time.Duration
	// Now is the clock. nil → time.Now.
	Now func() time.Time
	// Logger receives warnings (Redis or store failures). nil → discarded.
	Logger *slog.Logger
}

// List is the set of bans in force, kept in memory.
type List struct {
	opts  Options
	mu    sync.RWMutex
	byID  map[string]store.Ban
	byKey map[string][]string // kind + "\x00" + value → ban ids
	n     atomic.Int64        // len(byID), read without the lock on the hot path
}

// New returns an empty list; call Run to load, poll and subscribe.
func New(opts Options) *List {
	if opts.Channel == "" {
		opts.Channel = "gatehouse:bans"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &List{opts: opts, byID: map[string]store.Ban{}, byKey: map[string][]string{}}
}

func key(kind, value string) string { return kind + "\x00" + value }

// Normalize returns the canonical form of a ban's value: IP addresses are
// parsed and unmapped (so "::ffff:192.0.2.1" and "192.0.2.1" are one ban, and
// the form matches reqctx's client IP); user and session ids are taken as they
// are. ErrInvalid for an unknown kind, an empty or oversized value, or an IP
// ban on something that is not an address.
func Normalize(kind, value string) (string, error) {
	if value == "" || len(value) > 256 {
		return "", fmt.Errorf("%w: value must be 1-256 bytes", ErrInvalid)
	}
	switch kind {
	case store.BanIP:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return "", fmt.Errorf("%w: not an IP address", ErrInvalid)
		}
		return a.Unmap().WithZone("").String(), nil
	case store.BanUser, store.BanSession:
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < 0x21 || c > 0x7e {
				return "", fmt.Errorf("%w: value must be printable ASCII", ErrInvalid)
			}
		}
		return value, nil
	}
	return "", fmt.Errorf("%w: kind must be ip, user or session", ErrInvalid)
}

// Check returns the ban that applies to a request from ip, by user and
// session (any may be empty), if one is in force. It reads memory only.
func (l *List) Check(ip, user, session string) (store.Ban, bool) {
	if l.n.Load() == 0 {
		return store.Ban{}, false // the common case: nothing banned, no lock
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	var now time.Time // read only when a key matches: the clock costs more than the lookups
	for _, k := range [...]struct{ kind, v string }{{store.BanIP, ip}, {store.BanUser, user}, {store.BanSession, session}} {
		if k.v == "" {
			continue
		}
		for _, id := range l.byKey[key(k.kind, k.v)] {
			if now.IsZero() {
				now = l.opts.Now()
			}
			if b := l.byID[id]; b.Active(now) {
				return b, true
			}
		}
	}
	return store.Ban{}, false
}

// Add records a ban in the store, lists it here at once and tells the other
// replicas. b.Value is normalised; b.ID and b.CreatedAt are filled in when
// empty. ErrInvalid for a bad kind, value or duration.
func (l *List) Add(ctx context.Context, b store.Ban) (store.Ban, error) {
	v, err := Normalize(b.Kind, b.Value)
	if err != nil {
		return store.Ban{}, err
	}
	b.Value = v
	if b.CreatedAt.IsZero() {
		b.CreatedAt = l.opts.Now().UTC()
	}
	if d := b.ExpiresAt.Sub(b.CreatedAt); d <= 0 || d > MaxDuration {
		return store.Ban{}, fmt.Errorf("%w: duration must be positive and at most 30d", ErrInvalid)
	}
	if err := l.opts.Store.InsertBan(ctx, &b); err != nil {
		return store.Ban{}, fmt.Errorf("ban: add: %w", err)
	}
	l.apply(b)
	l.publish(ctx, b)
	return b, nil
}

// Lift ends the ban id everywhere. ErrNotFound if it is not in force.
func (l *List) Lift(ctx context.Context, id string) (store.Ban, error) {
	b, err := l.opts.Store.LiftBan(ctx, id, l.opts.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return store.Ban{}, ErrNotFound
	}
	if err != nil {
		return store.Ban{}, fmt.Errorf("ban: lift: %w", err)
	}
	l.apply(*b)
	l.publish(ctx, *b)
	return *b, nil
}

// Active lists the bans in force known to this replica, newest first.
func (l *List) Active() []store.Ban {
	now := l.opts.Now()
	l.mu.RLock()
	out := make([]store.Ban, 0, len(l.byID))
	for _, b := range l.byID {
		if b.Active(now) {
			out = append(out, b)
		}
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Len is the number of bans in force.
func (l *List) Len() int { return len(l.Active()) }

// apply lists b if it is in force and unlists it otherwise. It is idempotent,
// so the same ban arriving in-process, by pub/sub and by poll is harmless.
func (l *List) apply(b store.Ban) {
	now := l.opts.Now()
	v, err := Normalize(b.Kind, b.Value)
	if err != nil || b.ID == "" || len(b.ID) > 128 {
		return
	}
	k := key(b.Kind, v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, listed := l.byID[b.ID]; listed {
		l.removeLocked(b.ID)
	}
	if !b.Active(now) {
		return
	}
	if len(l.byID) >= maxListed {
		l.evictLocked()
	}
	b.Value = v
	l.byID[b.ID] = b
	l.byKey[k] = append(l.byKey[k], b.ID)
	l.n.Store(int64(len(l.byID)))
}

func (l *List) removeLocked(id string) {
	b, ok := l.byID[id]
	if !ok {
		return
	}
	delete(l.byID, id)
	k := key(b.Kind, b.Value)
	ids := l.byKey[k]
	for i, x := range ids {
		if x == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(l.byKey, k)
	} else {
		l.byKey[k] = ids
	}
	l.n.Store(int64(len(l.byID)))
}

// evictLocked drops the ban that ends first, to keep memory bounded under a
// flood of detector bans. The store still holds it.
func (l *List) evictLocked() {
	var first string
	var at time.Time
	for id, b := range l.byID {
		if first == "" || b.ExpiresAt.Before(at) {
			first, at = id, b.ExpiresAt
		}
	}
	l.removeLocked(first)
}

func (l *List) sweep() {
	now := l.opts.Now()
	l.mu.Lock()
	for id, b := range l.byID {
		if !b.Active(now) {
			l.removeLocked(id)
		}
	}
	l.mu.Unlock()
}

// message is what travels on the Redis channel.
type message struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Value     string     `json:"value"`
	Reason    string     `json:"reason,omitempty"`
	Source    string     `json:"source,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	LiftedAt  *time.Time `json:"lifted_at,omitempty"`
}

func (l *List) publish(ctx context.Context, b store.Ban) {
	if l.opts.Redis == nil {
		return
	}
	m, _ := json.Marshal(message{ID: b.ID, Kind: b.Kind, Value: b.Value, Reason: b.Reason, Source: b.Source, CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt, LiftedAt: b.LiftedAt})
	// Never hold the caller for long; the store poll is the safety net.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := l.opts.Redis.Publish(pctx, l.opts.Channel, m).Err(); err != nil {
		l.opts.Logger.Warn("publish ban", "error", err.Error())
	}
}

// Sync loads changes from the store once: the bans in force on the first call
// (since zero), then every ban created or lifted since the given time. It
// returns the time to pass next.
func (l *List) Sync(ctx context.Context, since time.Time) (time.Time, error) {
	if since.IsZero() {
		now := l.opts.Now()
		active, err := l.opts.Store.ActiveBans(ctx, now, 10000)
		if err != nil {
			return since, fmt.Errorf("ban: sync: %w", err)
		}
		for _, b := range active {
			l.apply(b)
		}
		return now, nil
	}
	for {
		got, err := l.opts.Store.BansChangedSince(ctx, since, 1000)
		if err != nil {
			return since, fmt.Errorf("ban: sync: %w", err)
		}
		for _, b := range got {
			l.apply(b)
			if b.UpdatedAt.After(since) {
				since = b.UpdatedAt
			}
		}
		if len(got) < 1000 {
			return since, nil
		}
	}
}

// Run loads the bans in force, then polls the store, listens to Redis and
// sweeps expired entries until ctx ends.
func (l *List) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if l.opts.Redis != nil {
		wg.Go(func() { l.subscribe(ctx) })
	}
	defer wg.Wait()
	var since time.Time
	t := time.NewTicker(l.opts.PollInterval)
	defer t.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		next, err := l.Sync(ctx, since)
		if err != nil && ctx.Err() == nil {
			l.opts.Logger.Warn("poll bans", "error", err.Error())
		}
		if !next.IsZero() {
			// Overlap by 5s: updated_at comes from the clock of whichever
			// process wrote it, which may trail ours.
			since = next.Add(-5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			l.sweep()
		case <-t.C:
		}
	}
}

func (l *List) subscribe(ctx context.Context) {
	redisfeed.Follow(ctx, l.opts.Redis, l.opts.Channel, "bans", l.opts.Logger, func(payload string) {
		b, err := decode(payload)
		if err != nil {
			l.opts.Logger.Warn("bad ban message", "error", err.Error())
			return
		}
		l.apply(b)
	})
}

// decode parses a pub/sub message. Anything another replica could not have
// sent is refused: the channel is shared state an intruder on Redis could write.
func decode(payload string) (store.Ban, error) {
	if len(payload) > 4096 {
		return store.Ban{}, errors.New("ban message too large")
	}
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return store.Ban{}, errors.New("ban message is not JSON")
	}
	v, err := Normalize(m.Kind, m.Value)
	if err != nil {
		return store.Ban{}, err
	}
	if m.ID == "" || len(m.ID) > 128 || m.ExpiresAt.Sub(m.CreatedAt) > MaxDuration || !m.ExpiresAt.After(m.CreatedAt) {
		return store.Ban{}, errors.New("ban message has a bad id or duration")
	}
	return store.Ban{ID: m.ID, Kind: m.Kind, Value: v, Reason: m.Reason, Source: m.Source, CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt, LiftedAt: m.LiftedAt}, nil
}
