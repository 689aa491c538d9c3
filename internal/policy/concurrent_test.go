package policy

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// TestConcurrentDecisions shares one Rule between goroutines that each expect
// their own answer; run with -race.
func TestConcurrentDecisions(t *testing.T) {
	env := newEnv(t)
	rule := &Rule{
		Access:        Authenticated,
		Scopes:        []string{"api"},
		Allow:         mustRequest(t, env, `request.path.id == token.sub || "admin" in token.roles`),
		ResponseAllow: mustResponse(t, env, `response.body.owner_id == token.sub || "admin" in token.roles`),
	}
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Go(func() {
			sub := "u" + strconv.Itoa(w)
			c := claims(func(c *token.Claims) { c.Subject = sub })
			for i := range rounds {
				id := sub
				if i%2 == 1 {
					id = "someone-else"
				}
				in := &Input{Method: "GET", PathParams: map[string]string{"id": id}, Claims: c, Now: now}
				d := rule.Decide(context.Background(), in)
				if d.Allow != (i%2 == 0) {
					errs <- "worker " + sub + ": request decision " + d.Reason
					return
				}
				r := rule.DecideResponse(context.Background(), in, 200, map[string]any{"owner_id": id})
				if r.Allow != (i%2 == 0) {
					errs <- "worker " + sub + ": response decision " + r.Reason
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
