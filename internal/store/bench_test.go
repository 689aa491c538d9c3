package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// benchDBs opens one database per dialect; PostgreSQL only when its URL is set.
var benchDBs = []struct {
	name string
	open func(b *testing.B) *store.DB
}{
	{"sqlite", func(b *testing.B) *store.DB { return openSQLite(b) }},
	{"postgres", func(b *testing.B) *store.DB { return openPostgres(b) }},
}

// warm opens pool connections before the timer starts: establishing a
// PostgreSQL connection costs far more than the operations measured.
func warm(b *testing.B, db *store.DB) {
	b.Helper()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, _, err := db.Peek(context.Background(), "warm-up", time.Now()); err != nil {
					b.Errorf("warm up: %v", err)
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
}

func reportOps(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// benchSession creates a user (once per id) and a session, returning its first
// token hash.
func benchSession(b *testing.B, db *store.DB, userID, sid string, now time.Time) []byte {
	hash := []byte(sid + "/1")
	s := store.Session{ID: sid, UserID: userID, Generation: 1, AMR: []string{"pwd"}, CreatedAt: now, LastUsedAt: now,
		IdleExpiresAt: now.Add(30 * 24 * time.Hour), ExpiresAt: now.Add(90 * 24 * time.Hour)}
	tok := store.RefreshToken{Hash: hash, Generation: 1, CreatedAt: now}
	if err := db.CreateSession(context.Background(), &s, &tok); err != nil {
		b.Fatalf("create session: %v", err)
	}
	return hash
}

func rotateOnce(ctx context.Context, db *store.DB, sid string, old []byte, gen int64, now time.Time) ([]byte, error) {
	next := []byte(fmt.Sprintf("%s/%d", sid, gen+1))
	err := db.RotateRefreshToken(ctx, store.Rotation{
		SessionID:       sid,
		OldHash:         old,
		OldGeneration:   gen,
		SuccessorSealed: []byte("sealed successor of a realistic length, about 64 bytes......."),
		New:             store.RefreshToken{Hash: next, Generation: gen + 1, CreatedAt: now},
		Now:             now,
		IdleExpiresAt:   now.Add(30 * 24 * time.Hour),
	})
	return next, err
}

// BenchmarkRotateRefreshToken measures the refresh hot path's write: one
// rotation transaction (two conditional updates, an insert, an erase).
// "sequential" rotates one family in a chain; "parallel" rotates one family per
// goroutine at once.
func BenchmarkRotateRefreshToken(b *testing.B) {
	for _, d := range benchDBs {
		b.Run(d.name+"/sequential", func(b *testing.B) {
			db := d.open(b)
			ctx := context.Background()
			mustCreateBenchUser(b, db, "u1")
			now := time.Now()
			hash := benchSession(b, db, "u1", "s1", now)
			gen := int64(1)
			for b.Loop() {
				var err error
				if hash, err = rotateOnce(ctx, db, "s1", hash, gen, now); err != nil {
					b.Fatalf("rotate: %v", err)
				}
				gen++
			}
			reportOps(b)
		})
		b.Run(d.name+"/parallel", func(b *testing.B) {
			db := d.open(b)
			ctx := context.Background()
			mustCreateBenchUser(b, db, "u1")
			now := time.Now()
			// One family per goroutine, created before the timer starts.
			const families = 64
			hashes := make([][]byte, families)
			for i := range families {
				hashes[i] = benchSession(b, db, "u1", fmt.Sprintf("s%d", i), now)
			}
			var seq atomic.Int64
			warm(b, db)
			b.RunParallel(func(pb *testing.PB) {
				i := seq.Add(1) - 1
				if i >= families {
					b.Errorf("more than %d goroutines", families)
					return
				}
				sid, hash := fmt.Sprintf("s%d", i), hashes[i]
				gen := int64(1)
				for pb.Next() {
					var err error
					if hash, err = rotateOnce(ctx, db, sid, hash, gen, now); err != nil {
						b.Errorf("rotate: %v", err)
						return
					}
					gen++
				}
			})
			reportOps(b)
		})
	}
}

// BenchmarkHit measures the login-throttle counter: "one-key" has every
// goroutine hitting the same key (the worst case, an attack on one account),
// "many-keys" one key per goroutine.
func BenchmarkHit(b *testing.B) {
	for _, d := range benchDBs {
		b.Run(d.name+"/one-key", func(b *testing.B) {
			db := d.open(b)
			ctx := context.Background()
			now := time.Now()
			warm(b, db)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := db.Hit(ctx, "acct:victim", time.Hour, now); err != nil {
						b.Errorf("hit: %v", err)
						return
					}
				}
			})
			reportOps(b)
		})
		b.Run(d.name+"/many-keys", func(b *testing.B) {
			db := d.open(b)
			ctx := context.Background()
			now := time.Now()
			var seq atomic.Int64
			warm(b, db)
			b.RunParallel(func(pb *testing.PB) {
				key := fmt.Sprintf("ip:192.0.2.%d", seq.Add(1))
				for pb.Next() {
					if _, _, err := db.Hit(ctx, key, time.Hour, now); err != nil {
						b.Errorf("hit: %v", err)
						return
					}
				}
			})
			reportOps(b)
		})
	}
}

func mustCreateBenchUser(b *testing.B, db *store.DB, id string) {
	u := store.User{ID: id, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := db.CreateUser(context.Background(), &u); err != nil {
		b.Fatalf("create user: %v", err)
	}
}
