// Package redisfeed follows a Redis pub/sub channel for as long as a context
// lives, resubscribing after connection failures. It is how replicas hear each
// other's revocations and bans at once.
//
// It must never block the publisher or decide anything itself: messages are
// handed to the caller, who validates them.
package redisfeed

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Follow calls handle with the payload of every message on channel until ctx
// ends. A failed subscription is logged (naming what) and retried after a
// second; it never returns early.
func Follow(ctx context.Context, client redis.UniversalClient, channel, what string, log *slog.Logger, handle func(payload string)) {
	for ctx.Err() == nil {
		sub := client.Subscribe(ctx, channel)
		if _, err := sub.Receive(ctx); err != nil {
			sub.Close()
			if ctx.Err() == nil {
				log.Warn("subscribe to "+what, "error", err.Error())
				sleep(ctx, time.Second)
			}
			continue
		}
		ch := sub.Channel()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case msg, ok := <-ch:
				if !ok {
					break loop
				}
				handle(msg.Payload)
			}
		}
		sub.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
