package monitor

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Bus fans events out to subscribers, each with its own bounded queue and
// goroutine. Publish never blocks: when a subscriber's queue is full the event
// is dropped for that subscriber and counted, so a slow store or webhook can
// never hold a request.
type Bus struct {
	subs []*subscriber
}

type subscriber struct {
	name    string
	ch      chan store.Event
	fn      func(ctx context.Context, e store.Event)
	dropped atomic.Int64
	onDrop  func()
}

// Subscribe adds a subscriber with a queue of size events. Every Subscribe
// must happen before the first Publish and Run (the monitor subscribes in New).
func (b *Bus) Subscribe(name string, size int, fn func(ctx context.Context, e store.Event), onDrop func()) {
	b.subs = append(b.subs, &subscriber{name: name, ch: make(chan store.Event, max(size, 1)), fn: fn, onDrop: onDrop})
}

// Publish offers e to every subscriber without blocking.
func (b *Bus) Publish(e store.Event) {
	for _, s := range b.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
			if s.onDrop != nil {
				s.onDrop()
			}
		}
	}
}

// Dropped returns the events dropped per subscriber.
func (b *Bus) Dropped() map[string]int64 {
	out := make(map[string]int64, len(b.subs))
	for _, s := range b.subs {
		out[s.name] = s.dropped.Load()
	}
	return out
}

// Run delivers events until ctx ends. Events still queued then are delivered
// with ctx's cancellation removed, so a shutdown does not lose them.
func (b *Bus) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range b.subs {
		wg.Go(func() {
			for {
				select {
				case e := <-s.ch:
					s.fn(ctx, e)
				case <-ctx.Done():
					dctx := context.WithoutCancel(ctx)
					for {
						select {
						case e := <-s.ch:
							s.fn(dctx, e)
						default:
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
}
