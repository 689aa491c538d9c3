package checks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// RateLimit sends a bounded burst of wrong passwords to the login URL for the
// first user and a bounded burst of normal calls to the probe endpoint,
// stopping at the first 429. It runs after the other active checks because
// it may trip limits or a lockout.
type RateLimit struct {
	// LoginAttempts bounds the wrong-password burst. Zero means 30.
	LoginAttempts int
	// APICalls bounds the authenticated burst. Zero means 150.
	APICalls int
}

var _ scan.Check = RateLimit{}

var rateRules = []scan.Rule{
	{ID: "GH-RATE-001", Title: "No rate limit on failed sign-ins", Severity: scan.SeverityHigh,
		Fix: "Limit failed sign-ins per account and per IP (answer 429 with Retry-After) so passwords cannot be guessed at speed."},
	{ID: "GH-RATE-002", Title: "No rate limit on authenticated API calls", Severity: scan.SeverityMedium,
		Fix: "Apply a per-user (and per-IP) rate limit to API routes and answer 429 with Retry-After."},
	{ID: "GH-RATE-003", Title: "Account lockout on failed sign-ins", Severity: scan.SeverityInfo,
		Fix: "Lockout stops guessing but lets anyone lock out a victim; prefer rate limits with back-off, and make lockouts short and per-source where possible."},
}

// ID implements scan.Check.
func (RateLimit) ID() string { return "rate-limit" }

// Phase implements scan.Check.
func (RateLimit) Phase() scan.Phase { return scan.PhaseDisruptive }

// Rules implements scan.Check.
func (RateLimit) Rules() []scan.Rule { return rateRules }

// Run implements scan.Check.
func (c RateLimit) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	if len(t.Users) > 0 {
		f, err := c.login(ctx, t)
		if f != nil {
			out = append(out, *f)
		}
		if err != nil {
			return out, err
		}
	}
	if p := t.Baseline.Probe; p != nil {
		f, err := c.api(ctx, t, p)
		if f != nil {
			out = append(out, *f)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func lockedOut(r *scan.Response) bool {
	if r.Status == http.StatusLocked {
		return true
	}
	b := strings.ToLower(string(r.Body))
	return strings.Contains(b, "locked") || strings.Contains(b, "lockout") || strings.Contains(b, "too many")
}

func (c RateLimit) login(ctx context.Context, t *scan.Target) (*scan.Finding, error) {
	n := c.LoginAttempts
	if n <= 0 {
		n = 30
	}
	user := t.Users[0].Name
	path := t.LoginURL.String()
	var last *scan.Response
	for i := 1; i <= n; i++ {
		form := url.Values{"grant_type": {"password"}, "username": {user}, "password": {fmt.Sprintf("gatehouse-scan-wrong-%d", i)}}
		r, err := t.Client.Do(ctx, scan.Request{Method: http.MethodPost, Path: path, NoRetry: true,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, Body: []byte(form.Encode())})
		if err != nil {
			return nil, err
		}
		last = r
		if r.Status == http.StatusTooManyRequests {
			return nil, nil
		}
		if lockedOut(r) {
			f := newFinding(t, rateRules[2], "rate-limit", http.MethodPost, t.LoginURL.Path, "lockout", r, "",
				fmt.Sprintf("After %d wrong passwords for %q the answer changed to a lockout.", i, user), "Content-Type", "Retry-After")
			f.URL = t.Mask.Mask(t.LoginURL.String())
			return &f, nil
		}
	}
	f := newFinding(t, rateRules[0], "rate-limit", http.MethodPost, t.LoginURL.Path, "", last, "",
		fmt.Sprintf("%d wrong passwords for %q in a burst: no 429 and no lockout.", n, user))
	f.URL = t.Mask.Mask(t.LoginURL.String())
	return &f, nil
}

func (c RateLimit) api(ctx context.Context, t *scan.Target, p *scan.Probe) (*scan.Finding, error) {
	n := c.APICalls
	if n <= 0 {
		n = 150
	}
	var (
		sent, limited atomic.Int64
		firstErr      error
		mu            sync.Mutex
		wg            sync.WaitGroup
		last          *scan.Response
	)
	next := make(chan struct{})
	go func() {
		defer close(next)
		for i := 0; i < n && limited.Load() == 0; i++ {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				r, err := t.Do(ctx, scan.Request{Method: p.Method, Path: p.Path, Token: t.Token(), NoRetry: true})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					limited.Add(1) // stop the feeder
					continue
				}
				sent.Add(1)
				last = r
				mu.Unlock()
				if r.Status == http.StatusTooManyRequests {
					limited.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		if errors.Is(firstErr, scan.ErrBudget) || ctx.Err() != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("api burst: %w", firstErr)
	}
	if limited.Load() > 0 {
		return nil, nil
	}
	f := newFinding(t, rateRules[1], "rate-limit", p.Method, p.Path, "", last, "Bearer <session token>",
		fmt.Sprintf("%d authenticated calls in a burst: no 429.", sent.Load()), "Content-Type", "RateLimit", "RateLimit-Policy", "X-RateLimit-Limit")
	return &f, nil
}
