package monitor

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claimer lets one replica act on an attack that several detect. Detectors
// count their own replica's traffic, so an attack spread over replicas can
// trip the same detector on each at nearly the same moment; the replica that
// claims the subject first bans, records and alerts, the others stand down.
type Claimer interface {
	// Claim reports whether this caller won key for ttl.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// RedisClaimer claims with SET NX PX on the shared Redis.
type RedisClaimer struct {
	Client redis.UniversalClient
	// Prefix is prepended to every key. "" → "gatehouse:monitor:claim:".
	Prefix string
}

// Claim implements Claimer.
func (c RedisClaimer) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	p := c.Prefix
	if p == "" {
		p = "gatehouse:monitor:claim:"
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Client.SetNX(cctx, p+key, 1, max(ttl, time.Second)).Result()
}
