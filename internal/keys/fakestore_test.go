package keys

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Compile-time guard: the real store satisfies the consumer-side interface.
var _ KeyStore = (*store.DB)(nil)

var stateOrder = map[string]int{store.KeyNext: 0, store.KeyActive: 1, store.KeyRetiring: 2, store.KeyRetired: 3}

// fakeStore is an in-memory KeyStore with the semantics of *store.DB: duplicate ids
// and a second active key are store.ErrConflict; TransitionKeys is all or nothing,
// conditional on each key's From state, forward only.
type fakeStore struct {
	mu   sync.Mutex
	keys []store.SigningKey // insertion order = oldest first

	// beforeTransition, if set, runs (without the lock) at the start of each
	// TransitionKeys call; tests use it to line up concurrent callers.
	beforeTransition func()
	listCalls        int
}

func cloneKey(k store.SigningKey) store.SigningKey {
	k.PublicJWK = slices.Clone(k.PublicJWK)
	k.PrivateSealed = slices.Clone(k.PrivateSealed)
	for _, p := range []**time.Time{&k.ActivatedAt, &k.RetiringAt, &k.RetiredAt} {
		if *p != nil {
			t := **p
			*p = &t
		}
	}
	return k
}

func activeCount(keys []store.SigningKey) int {
	n := 0
	for _, k := range keys {
		if k.State == store.KeyActive {
			n++
		}
	}
	return n
}

func insertFake(keys []store.SigningKey, k *store.SigningKey) ([]store.SigningKey, error) {
	for _, e := range keys {
		if e.ID == k.ID {
			return nil, fmt.Errorf("fake: duplicate id: %w", store.ErrConflict)
		}
	}
	keys = append(keys, cloneKey(*k))
	if activeCount(keys) > 1 {
		return nil, fmt.Errorf("fake: second active key: %w", store.ErrConflict)
	}
	return keys, nil
}

func (f *fakeStore) CreateSigningKey(_ context.Context, k *store.SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys, err := insertFake(slices.Clone(f.keys), k)
	if err != nil {
		return err
	}
	f.keys = keys
	return nil
}

func (f *fakeStore) SigningKeys(context.Context) ([]store.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	out := make([]store.SigningKey, len(f.keys))
	for i, k := range f.keys {
		out[i] = cloneKey(k)
	}
	return out, nil
}

func (f *fakeStore) TransitionKeys(_ context.Context, ts []store.KeyTransition, newKey *store.SigningKey) error {
	if f.beforeTransition != nil {
		f.beforeTransition()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	work := make([]store.SigningKey, len(f.keys))
	for i, k := range f.keys {
		work[i] = cloneKey(k)
	}
	for _, t := range ts {
		if stateOrder[t.To] <= stateOrder[t.From] {
			return fmt.Errorf("fake: backward transition %s -> %s", t.From, t.To)
		}
		i := slices.IndexFunc(work, func(k store.SigningKey) bool { return k.ID == t.ID })
		if i < 0 || work[i].State != t.From {
			return fmt.Errorf("fake: key %s not in %s: %w", t.ID, t.From, store.ErrConflict)
		}
		at := t.At
		work[i].State = t.To
		switch t.To {
		case store.KeyActive:
			work[i].ActivatedAt = &at
		case store.KeyRetiring:
			work[i].RetiringAt = &at
		case store.KeyRetired:
			work[i].RetiredAt = &at
		}
		if activeCount(work) > 1 {
			return fmt.Errorf("fake: second active key: %w", store.ErrConflict)
		}
	}
	if newKey != nil {
		var err error
		if work, err = insertFake(work, newKey); err != nil {
			return err
		}
	}
	f.keys = work
	return nil
}

// set replaces a stored row in place (simulating someone with write access to
// the database).
func (f *fakeStore) set(id string, fn func(*store.SigningKey)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.keys {
		if f.keys[i].ID == id {
			fn(&f.keys[i])
		}
	}
}

func (f *fakeStore) states() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]string{}
	for _, k := range f.keys {
		m[k.ID] = k.State
	}
	return m
}
