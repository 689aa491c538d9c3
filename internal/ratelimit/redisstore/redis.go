package redisstore

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
)

var (
	//go:embed gcra.lua
	gcraSource string
	//go:embed window.lua
	windowSource string
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "gatehouse:rl:"

// maxKeyBytes is the longest caller key stored verbatim; longer keys are
// stored as their SHA-256.
const maxKeyBytes = 200

// Options configures New. Every zero value has a usable default.
type Options struct {
	// Prefix starts every Redis key this store writes. Empty means
	// DefaultPrefix. Use a hash tag (e.g. "{gatehouse}:rl:") only if you need
	// all keys on one Redis Cluster slot; each script touches a single key, so
	// the store works on a cluster without one.
	Prefix string
	// Pipeline, when positive, is the number of workers that send concurrent
	// decisions together as pipelines (see batcher). 0 sends each decision on
	// its own round trip. Call Close to stop the workers.
	Pipeline int
	// MaxBatch bounds one pipeline. 0 means 128.
	MaxBatch int
}

// Store is a ratelimit.Store over Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string
	gcra   *redis.Script
	window *redis.Script
	batch  *batcher // nil unless Options.Pipeline > 0
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a Store using client, which the caller owns and closes.
//
// Bound decisions with the client's ReadTimeout and WriteTimeout (go-redis
// ignores context deadlines for socket I/O unless the client sets
// ContextTimeoutEnabled): a rate-limit check should fail fast, in tens of
// milliseconds, so the Limiter's failure policy takes over from a stalled
// server instead of stalling every request.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: new: client is nil")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	s := &Store{
		client: client,
		prefix: prefix,
		gcra:   redis.NewScript(gcraSource),
		window: redis.NewScript(windowSource),
	}
	if opts.Pipeline > 0 {
		maxBatch := opts.MaxBatch
		if maxBatch <= 0 {
			maxBatch = 128
		}
		s.batch = newBatcher(client, opts.Pipeline, maxBatch)
	}
	return s, nil
}

// Close stops the pipeline workers (if any). It does not close the client.
func (s *Store) Close() {
	if s.batch != nil {
		s.batch.close()
	}
}

// Load caches both scripts on the server so that the first decisions need no
// EVAL fallback. Optional: decisions load the scripts on demand.
func (s *Store) Load(ctx context.Context) error {
	if err := s.gcra.Load(ctx, s.client).Err(); err != nil {
		return fmt.Errorf("redisstore: load gcra script: %w", err)
	}
	if err := s.window.Load(ctx, s.client).Err(); err != nil {
		return fmt.Errorf("redisstore: load window script: %w", err)
	}
	return nil
}

// AllowGCRA implements ratelimit.Store.
func (s *Store) AllowGCRA(ctx context.Context, key string, l ratelimit.Limit, n int64) (ratelimit.Decision, error) {
	if err := ratelimit.CheckGCRA(l, n); err != nil {
		return ratelimit.Decision{}, err
	}
	d, err := s.run(ctx, s.gcra, s.key("g", key), int64(l.Interval()/time.Microsecond), l.EffectiveBurst(), n)
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: gcra: %w", err)
	}
	d.Limit = l.EffectiveBurst()
	return d, nil
}

// AllowWindow implements ratelimit.Store.
func (s *Store) AllowWindow(ctx context.Context, key string, limit int64, window time.Duration, n int64) (ratelimit.Decision, error) {
	if err := ratelimit.CheckWindow(limit, window, n); err != nil {
		return ratelimit.Decision{}, err
	}
	d, err := s.run(ctx, s.window, s.key("w", key), int64(window/time.Microsecond), limit, n)
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: window: %w", err)
	}
	d.Limit = limit
	return d, nil
}

// key namespaces the caller's key by algorithm under the prefix.
//
// Why hash long keys: keys often embed client-controlled text (paths, user
// agents, ids); storing SHA-256 of anything longer than maxKeyBytes caps the
// memory one key can take in Redis. The separate "h" tags keep hashed and
// verbatim keys from ever meeting.
func (s *Store) key(kind, key string) string {
	if len(key) > maxKeyBytes {
		sum := sha256.Sum256([]byte(key))
		return s.prefix + kind + "h:" + hex.EncodeToString(sum[:])
	}
	return s.prefix + kind + ":" + key
}

func (s *Store) run(ctx context.Context, script *redis.Script, key string, a, b, n int64) (ratelimit.Decision, error) {
	var res []int64
	var err error
	if s.batch != nil {
		res, err = s.batch.do(ctx, script, key, a, b, n)
	} else {
		res, err = script.Run(ctx, s.client, []string{key}, a, b, n).Int64Slice()
	}
	if err != nil {
		return ratelimit.Decision{}, err
	}
	if len(res) != 4 {
		return ratelimit.Decision{}, fmt.Errorf("script replied with %d values, want 4", len(res))
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		Remaining:  res[1],
		ResetAfter: time.Duration(res[2]) * time.Microsecond,
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}
