package ratelimit

import (
	"context"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"time"
)

// MemoryOptions configures NewMemory. Every zero value has a usable default.
type MemoryOptions struct {
	// MaxKeys bounds the number of tracked keys across all shards. Zero means
	// 1,000,000. Each shard holds MaxKeys/Shards keys; as keys hash unevenly,
	// eviction starts when the fullest shard is full, about 1% short of MaxKeys
	// at a million keys. When a shard is full, its expired entries are evicted
	// first, then the entries closest to expiry.
	MaxKeys int
	// Shards is the number of independently locked shards, rounded up to a
	// power of two and capped so every shard holds at least one key. Zero means
	// the smallest power of two ≥ 16 × GOMAXPROCS (at least 64).
	Shards int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// SweepInterval is how often Run sweeps expired keys. Zero means one minute.
	SweepInterval time.Duration
}

// Memory is the embedded, in-process Store: sharded, bounded, and exact for one
// process. It is safe for concurrent use.
//
// Keys are not stored: each is reduced to a 64-bit maphash with a per-process
// random seed, and the map is keyed by that hash. This bounds memory per key
// whatever the key's length (keys often carry client-controlled parts such as
// IPs or user ids) and keeps the layout compact. The trade-off is that two keys
// with the same hash share a limit. With a random 64-bit hash the chance that
// any two of a million live keys collide is about 3×10⁻⁸, and the seed is
// unknown outside the process, so a client cannot aim a collision; a collision
// makes the two keys stricter together, never looser.
type Memory struct {
	gcraSeed, windowSeed maphash.Seed
	shards               []memShard
	mask                 uint64
	perShard             int
	evictBatch           int
	now                  func() time.Time
	sweepEvery           time.Duration
}

var _ Store = (*Memory)(nil)

// memEntry is one key's state. For GCRA exp is the TAT and count is unused;
// for a fixed window exp is the window's end and count its tally. Either way
// the entry carries no information once now ≥ exp, which is what makes
// expiry-based eviction safe.
type memEntry struct {
	exp   int64
	count int64
}

type memShard struct {
	mu sync.Mutex
	m  map[uint64]memEntry
	// pad keeps neighbouring shard locks on different cache lines.
	_ [48]byte
}

// NewMemory returns an in-memory store.
func NewMemory(opts MemoryOptions) *Memory {
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = 1_000_000
	}
	shards := opts.Shards
	if shards <= 0 {
		shards = max(64, 16*runtime.GOMAXPROCS(0))
	}
	shards = 1 << bits.Len(uint(shards-1)) // round up to a power of two
	for shards > 1 && shards > maxKeys {
		shards >>= 1
	}
	// Floor division keeps the total capacity at most MaxKeys.
	perShard := maxKeys / shards
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sweep := opts.SweepInterval
	if sweep <= 0 {
		sweep = time.Minute
	}
	m := &Memory{
		gcraSeed:   maphash.MakeSeed(),
		windowSeed: maphash.MakeSeed(),
		shards:     make([]memShard, shards),
		mask:       uint64(shards - 1),
		perShard:   perShard,
		evictBatch: max(1, perShard/64),
		now:        now,
		sweepEvery: sweep,
	}
	for i := range m.shards {
		m.shards[i].m = make(map[uint64]memEntry)
	}
	return m
}

// AllowGCRA implements Store.
func (m *Memory) AllowGCRA(_ context.Context, key string, l Limit, n int64) (Decision, error) {
	if err := CheckGCRA(l, n); err != nil {
		return Decision{}, err
	}
	now := unixMicroNanos(m.now())
	h := maphash.String(m.gcraSeed, key)
	s := &m.shards[h&m.mask]
	s.mu.Lock()
	e, ok := s.m[h]
	tat := int64(0)
	if ok {
		tat = e.exp
	}
	newTAT, d := gcraStep(now, tat, int64(l.Interval()), l.EffectiveBurst(), n)
	switch {
	case d.Allowed && newTAT > now:
		m.put(s, h, ok, now, memEntry{exp: newTAT})
	case ok && tat <= now:
		delete(s.m, h) // expired and not rewritten (a peek): drop it lazily
	}
	s.mu.Unlock()
	return d, nil
}

// AllowWindow implements Store.
func (m *Memory) AllowWindow(_ context.Context, key string, limit int64, window time.Duration, n int64) (Decision, error) {
	if err := CheckWindow(limit, window, n); err != nil {
		return Decision{}, err
	}
	now := unixMicroNanos(m.now())
	end := windowEnd(now, int64(window))
	h := maphash.String(m.windowSeed, key)
	s := &m.shards[h&m.mask]
	s.mu.Lock()
	e, ok := s.m[h]
	count := int64(0)
	// A stored tally counts only for exactly this window: a different end means
	// an earlier window or a changed window length.
	if ok && e.exp == end {
		count = e.count
	}
	newCount, d := windowStep(now, end, count, limit, n)
	switch {
	case d.Allowed && n > 0:
		m.put(s, h, ok, now, memEntry{exp: end, count: newCount})
	case ok && e.exp <= now:
		delete(s.m, h) // expired and not rewritten (a peek): drop it lazily
	}
	s.mu.Unlock()
	return d, nil
}

// unixMicroNanos returns t in nanoseconds since the epoch, truncated to whole
// microseconds: the resolution of Redis's TIME, so both stores compute the same
// decisions from the same instant.
func unixMicroNanos(t time.Time) int64 { return t.UnixMicro() * 1000 }

// put stores e under h, making room first when the key is new and the shard is
// full. The caller holds s.mu.
func (m *Memory) put(s *memShard, h uint64, exists bool, now int64, e memEntry) {
	if !exists && len(s.m) >= m.perShard {
		m.evict(s, now)
	}
	s.m[h] = e
}

// evict frees at least one slot in a full shard: it deletes every expired entry
// and, if that frees fewer than evictBatch slots, the live entries closest to
// expiry up to evictBatch in total.
//
// Why a batch: finding expired or near-expiry entries needs a scan of the
// shard, so each scan frees evictBatch (1/64 of the shard) slots and the scan
// cost is spread over that many inserts. A flood of fresh keys therefore costs
// O(log batch) amortised per insert rather than O(shard size), and the entries
// it pushes out are those nearest to a full bucket anyway, so the extra
// allowance an eviction hands back to a key is the smallest possible.
func (m *Memory) evict(s *memShard, now int64) {
	type cand struct {
		exp int64
		h   uint64
	}
	k := m.evictBatch
	freed := 0
	// heap is a max-heap on exp holding the k smallest live exps seen so far.
	heap := make([]cand, 0, k)
	for h, e := range s.m {
		if e.exp <= now {
			delete(s.m, h)
			freed++
			continue
		}
		if freed >= k {
			continue
		}
		c := cand{e.exp, h}
		if len(heap) < k {
			heap = append(heap, c)
			siftUp(heap, len(heap)-1, func(a, b cand) bool { return a.exp > b.exp })
		} else if c.exp < heap[0].exp {
			heap[0] = c
			siftDown(heap, 0, func(a, b cand) bool { return a.exp > b.exp })
		}
	}
	if freed >= k {
		return
	}
	slices.SortFunc(heap, func(a, b cand) int {
		switch {
		case a.exp < b.exp:
			return -1
		case a.exp > b.exp:
			return 1
		}
		return 0
	})
	for _, c := range heap[:min(len(heap), k-freed)] {
		delete(s.m, c.h)
	}
}

func siftUp[T any](h []T, i int, above func(a, b T) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !above(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown[T any](h []T, i int, above func(a, b T) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && above(h[r], h[l]) {
			c = r
		}
		if !above(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// Sweep deletes every entry expired at now and returns how many it deleted.
// Entries are also dropped lazily when touched, and when a full shard needs
// room; Sweep returns the memory of keys that are never touched again.
func (m *Memory) Sweep(now time.Time) int {
	t := now.UnixNano()
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for h, e := range s.m {
			if e.exp <= t {
				delete(s.m, h)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Run sweeps expired entries every SweepInterval until ctx is done. Start it
// in its own goroutine; it returns when ctx is cancelled.
func (m *Memory) Run(ctx context.Context) {
	t := time.NewTicker(m.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep(m.now())
		}
	}
}

// Len returns the number of tracked keys, expired or not.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Capacity returns the most keys the store will hold at once (at most
// MaxKeys).
func (m *Memory) Capacity() int { return m.perShard * len(m.shards) }
