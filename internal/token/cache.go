package token

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Verifier checks an access token; *Access is one.
type Verifier interface {
	Verify(tok string) (*Claims, error)
}

// CacheOptions configure a Cache.
type CacheOptions struct {
	// MaxEntries bounds the cache. 0 → 100,000 (about 40 MB at worst).
	MaxEntries int
	// Now is the clock; nil → time.Now.
	Now func() time.Time
}

const cacheShards = 64

// Cache remembers verified tokens so each token's signature is checked once,
// not on every request (signature verification is almost the whole cost of
// edge authentication: ~65 µs for ES256 against ~1 µs for a hit).
//
// Why it is safe: the key is the SHA-256 of the whole token, so a hit means
// the exact bytes were verified before; an entry dies when its token expires;
// failures are never cached. Revocation is checked separately on every request
// (by session id), so caching never extends a revoked session.
type Cache struct {
	v        Verifier
	now      func() time.Time
	perShard int
	shards   [cacheShards]cacheShard
}

// cacheShard counts its own hits and misses: one counter for the whole cache
// would be a cache line every core writes on every request.
type cacheShard struct {
	mu         sync.RWMutex
	m          map[[sha256.Size]byte]cacheEntry
	hits, miss atomic.Uint64
	_          [64]byte // keep neighbouring shards' counters off this cache line
}

type cacheEntry struct {
	claims *Claims
	exp    int64 // unix seconds
}

// NewCache wraps v with a bounded verified-token cache.
func NewCache(v Verifier, opts CacheOptions) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Cache{v: v, now: opts.Now, perShard: max(1, opts.MaxEntries/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

// Verify returns the token's claims, from the cache when this exact token was
// verified before and has not expired. The returned claims are shared: callers
// must not modify them.
func (c *Cache) Verify(tok string) (*Claims, error) {
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return c.v.Verify(tok)
	}
	// Hash the string's bytes in place: no copy on the hot path.
	k := sha256.Sum256(unsafe.Slice(unsafe.StringData(tok), len(tok)))
	sh := &c.shards[k[0]%cacheShards]
	now := c.now().Unix()
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	if ok && now < e.exp {
		sh.hits.Add(1)
		return e.claims, nil
	}
	sh.miss.Add(1)
	claims, err := c.v.Verify(tok)
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	if len(sh.m) >= c.perShard {
		sh.evict(now, c.perShard)
	}
	sh.m[k] = cacheEntry{claims: claims, exp: claims.Expiry}
	sh.mu.Unlock()
	return claims, nil
}

// evict makes room: expired entries first; if the shard is still full, an
// arbitrary eighth of it — map iteration order is random, so this is random
// eviction, which an attacker cannot steer towards one chosen victim.
func (sh *cacheShard) evict(now int64, limit int) {
	for k, e := range sh.m {
		if now >= e.exp {
			delete(sh.m, k)
		}
	}
	if len(sh.m) < limit {
		return
	}
	drop := max(1, len(sh.m)/8)
	for k := range sh.m {
		delete(sh.m, k)
		if drop--; drop == 0 {
			break
		}
	}
}

// Stats returns the number of hits and misses so far.
func (c *Cache) Stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].miss.Load()
	}
	return hits, misses
}

// Len is the number of cached tokens.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}
