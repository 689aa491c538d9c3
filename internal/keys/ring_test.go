package keys

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestRing(t testing.TB, st KeyStore, s *Sealer, c *clock, opts RingOptions) *Ring {
	t.Helper()
	if c != nil {
		opts.Now = c.Now
	}
	r, err := NewRing(context.Background(), st, s, opts)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

// byState returns the key ids of st in each state.
func byState(t *testing.T, st KeyStore) map[string][]string {
	t.Helper()
	keys, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, k := range keys {
		m[k.State] = append(m[k.State], k.ID)
	}
	return m
}

type jwksDoc struct {
	Keys []map[string]any `json:"keys"`
}

func jwksKids(t *testing.T, r *Ring) []string {
	t.Helper()
	var doc jwksDoc
	if err := json.Unmarshal(r.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k["kid"].(string))
	}
	slices.Sort(kids)
	return kids
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func mustSign(t *testing.T, r *Ring, payload string) string {
	t.Helper()
	tok, err := r.Sign([]byte(payload), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustVerify(t *testing.T, r *Ring, tok, payload, kid string) {
	t.Helper()
	got, gotKid, err := r.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if string(got) != payload || gotKid != kid {
		t.Fatalf("Verify = %q, %q; want %q, %q", got, gotKid, payload, kid)
	}
}

func TestRingBootstrap(t *testing.T) {
	for _, alg := range []string{"", "ES256", "EdDSA"} {
		t.Run("alg="+alg, func(t *testing.T) {
			st := &fakeStore{}
			c := newClock()
			r := newTestRing(t, st, testSealer(), c, RingOptions{Algorithm: alg})
			states := byState(t, st)
			if len(states[store.KeyActive]) != 1 || len(states[store.KeyNext]) != 1 || len(states) != 2 {
				t.Fatalf("after bootstrap: %v, want one active and one next", states)
			}
			active, next := states[store.KeyActive][0], states[store.KeyNext][0]
			wantAlg := alg
			if wantAlg == "" {
				wantAlg = "ES256"
			}

			keys := r.Keys()
			if len(keys) != 2 {
				t.Fatalf("Keys() = %+v", keys)
			}
			for _, k := range keys {
				if k.Algorithm != wantAlg || !k.CreatedAt.Equal(c.Now()) {
					t.Fatalf("key %+v", k)
				}
				if (k.State == store.KeyActive) != (k.ActivatedAt != nil) {
					t.Fatalf("ActivatedAt of %s key: %v", k.State, k.ActivatedAt)
				}
			}

			// JWKS: both keys, public parameters only.
			var doc jwksDoc
			if err := json.Unmarshal(r.JWKS(), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Keys) != 2 {
				t.Fatalf("JWKS has %d keys", len(doc.Keys))
			}
			if doc.Keys[0]["kid"] != active {
				t.Fatalf("JWKS lists %v first, want the active key", doc.Keys[0]["kid"])
			}
			for _, k := range doc.Keys {
				if k["alg"] != wantAlg || k["use"] != "sig" {
					t.Fatalf("JWKS key %v", k)
				}
				for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
					if _, ok := k[private]; ok {
						t.Fatalf("JWKS key carries private parameter %q", private)
					}
				}
			}
			if got := jwksKids(t, r); !slices.Equal(got, sorted(active, next)) {
				t.Fatalf("JWKS kids %v", got)
			}

			tok := mustSign(t, r, `{"sub":"u1"}`)
			mustVerify(t, r, tok, `{"sub":"u1"}`, active)
			hdr := decodeHeader(t, tok)
			if hdr["alg"] != wantAlg || hdr["kid"] != active || hdr["typ"] != "at+jwt" || len(hdr) != 3 {
				t.Fatalf("header %v", hdr)
			}

			// A second replica starting on the same store uses the same keys.
			r2 := newTestRing(t, st, testSealer(), c, RingOptions{Algorithm: alg})
			mustVerify(t, r2, tok, `{"sub":"u1"}`, active)
			if got := byState(t, st); len(got[store.KeyActive])+len(got[store.KeyNext]) != 2 {
				t.Fatalf("second replica added keys: %v", got)
			}
		})
	}
}

func TestRingBootstrapConcurrent(t *testing.T) {
	st := &fakeStore{}
	const n = 6
	rings := make([]*Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rings[i], errs[i] = NewRing(context.Background(), st, testSealer(), RingOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	states := byState(t, st)
	if len(states[store.KeyActive]) != 1 {
		t.Fatalf("states after concurrent bootstrap: %v", states)
	}
	tok := mustSign(t, rings[0], "p")
	for _, r := range rings {
		if err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, r, tok, "p", states[store.KeyActive][0])
	}
}

func TestRingRotationLifecycle(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	var rotations []RotateResult
	r := newTestRing(t, st, testSealer(), c, RingOptions{
		RotationInterval: time.Hour,
		RetireAfter:      20 * time.Minute,
		OnRotate:         func(_ context.Context, res RotateResult) { rotations = append(rotations, res) },
	})
	ctx := context.Background()
	s0 := byState(t, st)
	a, n1 := s0[store.KeyActive][0], s0[store.KeyNext][0]
	tokA := mustSign(t, r, "signed by a")

	// Not due yet.
	c.Advance(59 * time.Minute)
	if rotated, err := r.MaybeRotate(ctx); err != nil || rotated {
		t.Fatalf("MaybeRotate at 59m = %v, %v", rotated, err)
	}
	// Due exactly at ActivatedAt + RotationInterval.
	c.Advance(time.Minute)
	if rotated, err := r.MaybeRotate(ctx); err != nil || !rotated {
		t.Fatalf("MaybeRotate at 60m = %v, %v", rotated, err)
	}
	s1 := byState(t, st)
	if len(s1[store.KeyNext]) != 1 {
		t.Fatalf("after rotation: %v", s1)
	}
	n2 := s1[store.KeyNext][0]
	if !slices.Equal(s1[store.KeyActive], []string{n1}) || !slices.Equal(s1[store.KeyRetiring], []string{a}) {
		t.Fatalf("after rotation: %v; want active %s, retiring %s", s1, n1, a)
	}
	if len(rotations) != 1 || rotations[0].Activated != n1 || rotations[0].Retiring != a || rotations[0].Next != n2 || len(rotations[0].Retired) != 0 {
		t.Fatalf("OnRotate got %+v", rotations)
	}
	if got := jwksKids(t, r); !slices.Equal(got, sorted(a, n1, n2)) {
		t.Fatalf("JWKS after rotation %v, want retiring, active and next", got)
	}
	mustVerify(t, r, tokA, "signed by a", a) // retiring still verifies
	tokN1 := mustSign(t, r, "signed by n1")
	mustVerify(t, r, tokN1, "signed by n1", n1)

	// Retiring key still published before RetireAfter.
	c.Advance(19 * time.Minute)
	if rotated, err := r.MaybeRotate(ctx); err != nil || rotated {
		t.Fatalf("MaybeRotate = %v, %v", rotated, err)
	}
	if got := st.states()[a]; got != store.KeyRetiring {
		t.Fatalf("a is %s before RetireAfter", got)
	}
	// Retired at RetiringAt + RetireAfter, without a rotation.
	c.Advance(time.Minute)
	if rotated, err := r.MaybeRotate(ctx); err != nil || rotated {
		t.Fatalf("MaybeRotate = %v, %v", rotated, err)
	}
	if got := st.states()[a]; got != store.KeyRetired {
		t.Fatalf("a is %s after RetireAfter", got)
	}
	if got := jwksKids(t, r); !slices.Equal(got, sorted(n1, n2)) {
		t.Fatalf("JWKS after retirement %v", got)
	}
	if _, _, err := r.Verify(tokA); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("token of a retired key: err = %v, want ErrUnknownKey", err)
	}
	mustVerify(t, r, tokN1, "signed by n1", n1)

	// Manual rotation.
	res, err := r.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Activated != n2 || res.Retiring != n1 || res.Next == "" || len(rotations) != 2 {
		t.Fatalf("Rotate = %+v", res)
	}
	mustVerify(t, r, tokN1, "signed by n1", n1)
	if _, kid, _ := r.Verify(mustSign(t, r, "x")); kid != n2 {
		t.Fatalf("signing with %s, want %s", kid, n2)
	}

	// Keys() reports the lifecycle timestamps.
	for _, k := range r.Keys() {
		switch k.ID {
		case a:
			if k.State != store.KeyRetired || k.RetiredAt == nil || k.RetiringAt == nil || k.ActivatedAt == nil {
				t.Fatalf("a: %+v", k)
			}
		case n1:
			if k.State != store.KeyRetiring || k.RetiringAt == nil || !k.RetiringAt.Equal(c.Now()) {
				t.Fatalf("n1: %+v", k)
			}
		}
	}

	// A retiring key is retired by the next rotation once expired.
	c.Advance(20 * time.Minute)
	res, err = r.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Retired, []string{n1}) {
		t.Fatalf("Rotate retired %v, want [%s]", res.Retired, n1)
	}
	if _, _, err := r.Verify(tokN1); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}
}

func TestMaybeRotateNeverWhenIntervalZero(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	r := newTestRing(t, st, testSealer(), c, RingOptions{})
	before := byState(t, st)
	c.Advance(10 * 365 * 24 * time.Hour)
	if rotated, err := r.MaybeRotate(context.Background()); err != nil || rotated {
		t.Fatalf("MaybeRotate = %v, %v", rotated, err)
	}
	if after := byState(t, st); !slices.Equal(after[store.KeyActive], before[store.KeyActive]) {
		t.Fatalf("rotated with RotationInterval 0: %v → %v", before, after)
	}
}

func TestRotateConcurrentOneWins(t *testing.T) {
	for _, viaMaybe := range []bool{false, true} {
		name := "Rotate"
		if viaMaybe {
			name = "MaybeRotate"
		}
		t.Run(name, func(t *testing.T) {
			st := &fakeStore{}
			c := newClock()
			opts := RingOptions{RotationInterval: time.Hour}
			r1 := newTestRing(t, st, testSealer(), c, opts)
			r2 := newTestRing(t, st, testSealer(), c, opts)
			c.Advance(2 * time.Hour)
			before := byState(t, st)

			// Both have read the same state; let both reach the store before
			// either writes.
			var arrived sync.WaitGroup
			arrived.Add(2)
			st.beforeTransition = func() { arrived.Done(); arrived.Wait() }

			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, r := range []*Ring{r1, r2} {
				wg.Go(func() {
					if viaMaybe {
						_, errs[i] = r.MaybeRotate(context.Background())
					} else {
						_, errs[i] = r.Rotate(context.Background())
					}
				})
			}
			wg.Wait()
			st.beforeTransition = nil

			wins, conflicts := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Fatalf("unexpected error: %v", err)
				}
			}
			if wins != 1 || conflicts != 1 {
				t.Fatalf("wins %d conflicts %d (%v)", wins, conflicts, errs)
			}
			after := byState(t, st)
			if !slices.Equal(after[store.KeyActive], before[store.KeyNext]) ||
				!slices.Equal(after[store.KeyRetiring], before[store.KeyActive]) ||
				len(after[store.KeyNext]) != 1 {
				t.Fatalf("before %v after %v", before, after)
			}
			// The loser reloaded: both sign with the new active key.
			for _, r := range []*Ring{r1, r2} {
				if _, kid, err := r.Verify(mustSign(t, r, "p")); err != nil || kid != after[store.KeyActive][0] {
					t.Fatalf("signing kid %s err %v, want %s", kid, err, after[store.KeyActive][0])
				}
			}
		})
	}
}

func TestRotateWithoutNextKey(t *testing.T) {
	st := &fakeStore{}
	r := newTestRing(t, st, testSealer(), newClock(), RingOptions{})
	next := byState(t, st)[store.KeyNext][0]
	st.set(next, func(k *store.SigningKey) { k.State = store.KeyRetired })
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := r.Rotate(context.Background())
	if !errors.Is(err, ErrNoNextKey) {
		t.Fatalf("Rotate without a next key: %v, want ErrNoNextKey", err)
	}
	states := byState(t, st)
	if len(states[store.KeyNext]) != 1 || len(jwksKids(t, r)) != 2 {
		t.Fatalf("no next key published: %v", states)
	}
	if _, err := r.Rotate(context.Background()); err != nil {
		t.Fatalf("second Rotate: %v", err)
	}
}

func TestMaybeRotatePublishesMissingNext(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	r := newTestRing(t, st, testSealer(), c, RingOptions{RotationInterval: time.Hour})
	next := byState(t, st)[store.KeyNext][0]
	st.set(next, func(k *store.SigningKey) { k.State = store.KeyRetired })
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour) // due, but there is nothing published to activate
	if rotated, err := r.MaybeRotate(context.Background()); err != nil || rotated {
		t.Fatalf("MaybeRotate = %v, %v; want a next key published, no rotation", rotated, err)
	}
	if got := byState(t, st); len(got[store.KeyNext]) != 1 {
		t.Fatalf("states %v", got)
	}
	if rotated, err := r.MaybeRotate(context.Background()); err != nil || !rotated {
		t.Fatalf("MaybeRotate = %v, %v; want rotation", rotated, err)
	}
}

func TestNewRingWrongKEKFailsClosed(t *testing.T) {
	st := &fakeStore{}
	newTestRing(t, st, testSealer(), nil, RingOptions{})
	active := byState(t, st)[store.KeyActive][0]

	_, err := NewRing(context.Background(), st, otherSealer(), RingOptions{})
	if err == nil {
		t.Fatal("NewRing with the wrong KEK succeeded")
	}
	if !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), "the KEK does not open signing key "+active+" (wrong kek?") {
		t.Fatalf("error %q", err)
	}
	if !strings.Contains(err.Error(), testSealer().KEKID()) || !strings.Contains(err.Error(), otherSealer().KEKID()) {
		t.Fatalf("error %q does not name both kek ids", err)
	}
	if got := byState(t, st); len(got) != 2 || len(got[store.KeyActive]) != 1 {
		t.Fatalf("NewRing with the wrong KEK changed the store: %v", got)
	}
}

func TestNewRingOptions(t *testing.T) {
	if _, err := NewRing(context.Background(), &fakeStore{}, testSealer(), RingOptions{Algorithm: "RS256"}); err == nil {
		t.Fatal("RS256 accepted")
	}
	if _, err := NewRing(context.Background(), &fakeStore{}, testSealer(), RingOptions{Algorithm: "none"}); err == nil {
		t.Fatal("none accepted")
	}
	if _, err := NewRing(context.Background(), nil, testSealer(), RingOptions{}); err == nil {
		t.Fatal("nil store accepted")
	}
}

// A replica that has not reloaded still verifies tokens of a key another replica
// activated, because that key was published as next first; a key it has never
// seen is found through a bounded ReloadIfStale.
func TestCrossReplicaVerification(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	stale := newTestRing(t, st, testSealer(), c, RingOptions{})
	other := newTestRing(t, st, testSealer(), c, RingOptions{})
	ctx := context.Background()

	res, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok := mustSign(t, other, "from the other replica")
	mustVerify(t, stale, tok, "from the other replica", res.Activated)

	res2, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := mustSign(t, other, "two rotations later")
	if _, _, err := stale.Verify(tok2); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	c.Advance(time.Minute)
	if err := stale.ReloadIfStale(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, stale, tok2, "two rotations later", res2.Activated)
}

func TestReloadIfStaleIsBounded(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	r := newTestRing(t, st, testSealer(), c, RingOptions{})
	ctx := context.Background()
	st.mu.Lock()
	base := st.listCalls
	st.mu.Unlock()

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := r.ReloadIfStale(ctx, time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st.mu.Lock()
	got := st.listCalls - base
	st.mu.Unlock()
	if got != 0 {
		t.Fatalf("ReloadIfStale read the store %d times right after a load, want 0", got)
	}

	c.Advance(time.Second)
	for range 50 {
		wg.Go(func() {
			if err := r.ReloadIfStale(ctx, time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st.mu.Lock()
	got = st.listCalls - base
	st.mu.Unlock()
	if got != 1 {
		t.Fatalf("50 concurrent ReloadIfStale calls read the store %d times, want 1", got)
	}
}

func TestRunReloadsUntilCancelled(t *testing.T) {
	st := &fakeStore{}
	r := newTestRing(t, st, testSealer(), nil, RingOptions{ReloadInterval: 5 * time.Millisecond})
	other := newTestRing(t, st, testSealer(), nil, RingOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	res, err := other.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Wait (without a time assertion) until Run has picked up the new next key.
	for !slices.Contains(jwksKids(t, r), res.Next) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

func TestRingAlgorithmChangeKeepsOldKeys(t *testing.T) {
	st := &fakeStore{}
	es := newTestRing(t, st, testSealer(), nil, RingOptions{Algorithm: "ES256"})
	tokES := mustSign(t, es, "es")
	ed := newTestRing(t, st, testSealer(), nil, RingOptions{Algorithm: "EdDSA"})
	// Two rotations: the ES256 next key activates, then the first EdDSA key.
	for range 2 {
		if _, err := ed.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tokEd := mustSign(t, ed, "ed")
	if hdr := decodeHeader(t, tokEd); hdr["alg"] != "EdDSA" {
		t.Fatalf("header %v", hdr)
	}
	if _, _, err := ed.Verify(tokES); err != nil {
		t.Fatalf("ES256 token of a retiring key: %v", err)
	}
	mustVerify(t, ed, tokEd, "ed", decodeHeader(t, tokEd)["kid"].(string))
}

// OnRotate runs outside the ring's lock: a hook may use the ring (here, reload it
// and list its keys) without deadlocking.
func TestOnRotateMayUseTheRing(t *testing.T) {
	st := &fakeStore{}
	c := newClock()
	var r *Ring
	var seen []KeyInfo
	r = newTestRing(t, st, testSealer(), c, RingOptions{
		RotationInterval: time.Hour,
		OnRotate: func(ctx context.Context, res RotateResult) {
			if err := r.Reload(ctx); err != nil {
				t.Error(err)
			}
			seen = r.Keys()
		},
	})
	c.Advance(time.Hour)
	if rotated, err := r.MaybeRotate(context.Background()); err != nil || !rotated {
		t.Fatalf("MaybeRotate = %v, %v", rotated, err)
	}
	if _, err := r.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 {
		t.Fatalf("hook saw %d keys, want 4", len(seen))
	}
}
