package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// The store is untrusted: someone with write access to it must not be able to
// make the ring accept their key.
func TestRingRefusesPlantedKeys(t *testing.T) {
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerKid, _ := thumbprint(&attacker.PublicKey)
	attackerJWK, _ := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: attackerKid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
	attackerDER, _ := x509.MarshalPKCS8PrivateKey(attacker)
	sealedOther, _ := otherSealer().Seal(signingKeyPurpose, attackerDER, signingKeyTable, signingKeyColumn, attackerKid)

	tests := []struct {
		name string
		// tamper changes the store; it gets the ids of the bootstrapped keys.
		tamper func(t *testing.T, st *fakeStore, active, next string)
		// forgedKid is the kid the attacker's token claims.
		forgedKid func(active, next string) string
		// activeBroken: the active key itself was tampered with, so Reload keeps
		// the previous snapshot.
		activeBroken bool
	}{
		{
			name: "new next key sealed under another kek",
			tamper: func(t *testing.T, st *fakeStore, _, _ string) {
				k := &store.SigningKey{ID: attackerKid, Algorithm: "ES256", State: store.KeyNext, PublicJWK: attackerJWK, PrivateSealed: sealedOther, CreatedAt: time.Now()}
				if err := st.CreateSigningKey(context.Background(), k); err != nil {
					t.Fatal(err)
				}
			},
			forgedKid: func(_, _ string) string { return attackerKid },
		},
		{
			name: "new retiring key with garbage private half",
			tamper: func(t *testing.T, st *fakeStore, _, _ string) {
				now := time.Now()
				k := &store.SigningKey{ID: attackerKid, Algorithm: "ES256", State: store.KeyRetiring, PublicJWK: attackerJWK, PrivateSealed: []byte("garbage"), CreatedAt: now, RetiringAt: &now}
				if err := st.CreateSigningKey(context.Background(), k); err != nil {
					t.Fatal(err)
				}
			},
			forgedKid: func(_, _ string) string { return attackerKid },
		},
		{
			name: "new key reusing a genuine sealed private half",
			tamper: func(t *testing.T, st *fakeStore, active, _ string) {
				var genuine []byte
				st.set(active, func(k *store.SigningKey) { genuine = slices.Clone(k.PrivateSealed) })
				k := &store.SigningKey{ID: attackerKid, Algorithm: "ES256", State: store.KeyNext, PublicJWK: attackerJWK, PrivateSealed: genuine, CreatedAt: time.Now()}
				if err := st.CreateSigningKey(context.Background(), k); err != nil {
					t.Fatal(err)
				}
			},
			forgedKid: func(_, _ string) string { return attackerKid },
		},
		{
			name: "public key of the next key replaced, kid kept",
			tamper: func(t *testing.T, st *fakeStore, _, next string) {
				jwk, _ := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: next, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
				st.set(next, func(k *store.SigningKey) { k.PublicJWK = jwk })
			},
			forgedKid: func(_, next string) string { return next },
		},
		{
			name: "public key of the active key replaced, kid kept",
			tamper: func(t *testing.T, st *fakeStore, active, _ string) {
				jwk, _ := jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: active, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
				st.set(active, func(k *store.SigningKey) { k.PublicJWK = jwk })
			},
			forgedKid:    func(active, _ string) string { return active },
			activeBroken: true,
		},
		{
			name: "next key row renamed to the attacker's kid with the attacker's public key",
			tamper: func(t *testing.T, st *fakeStore, _, next string) {
				st.set(next, func(k *store.SigningKey) { k.ID = attackerKid; k.PublicJWK = attackerJWK })
			},
			forgedKid: func(_, _ string) string { return attackerKid },
		},
		{
			name: "private halves of next and active swapped",
			tamper: func(t *testing.T, st *fakeStore, active, next string) {
				var a, n []byte
				st.set(active, func(k *store.SigningKey) { a = k.PrivateSealed })
				st.set(next, func(k *store.SigningKey) { n = k.PrivateSealed })
				st.set(active, func(k *store.SigningKey) { k.PrivateSealed = n })
				st.set(next, func(k *store.SigningKey) { k.PrivateSealed = a })
			},
			forgedKid:    func(active, _ string) string { return active },
			activeBroken: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStore{}
			r := newTestRing(t, st, testSealer(), nil, RingOptions{})
			states := byState(t, st)
			active, next := states[store.KeyActive][0], states[store.KeyNext][0]
			jwksBefore := r.JWKS()

			tt.tamper(t, st, active, next)
			forgedKid := tt.forgedKid(active, next)

			err := r.Reload(context.Background())
			if err == nil {
				t.Fatal("Reload accepted a tampered store without complaint")
			}
			forged := forge(t, map[string]any{"alg": "ES256", "kid": forgedKid}, `{"sub":"admin"}`, signES256(attacker))
			if _, _, err := r.Verify(forged); err == nil {
				t.Fatal("a token signed by the attacker's key verified")
			}
			if strings.Contains(string(r.JWKS()), attackerKid) {
				t.Fatal("the attacker's key is published")
			}
			if tt.activeBroken && string(r.JWKS()) != string(jwksBefore) {
				t.Fatal("Reload replaced the snapshot although the active key is untrusted")
			}
			// A process starting now refuses to run at all.
			if _, err := NewRing(context.Background(), st, testSealer(), RingOptions{}); err == nil {
				t.Fatal("NewRing accepted a tampered store")
			}
			// Signing still works with a trusted key.
			tok := mustSign(t, r, "still signing")
			if _, _, err := r.Verify(tok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReloadReportsUnknownState(t *testing.T) {
	st := &fakeStore{}
	r := newTestRing(t, st, testSealer(), nil, RingOptions{})
	next := byState(t, st)[store.KeyNext][0]
	st.set(next, func(k *store.SigningKey) { k.State = "compromised" })
	err := r.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), `unknown state "compromised"`) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(string(r.JWKS()), next) {
		t.Fatal("key in unknown state is published")
	}
}

// TestRingOnSQLite runs the ring against the real store (SQLite in a temporary
// directory): microsecond timestamps, the one-active index, conditional updates.
func TestRingOnSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "gatehouse.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	c := newClock()
	c.Advance(123456789 * time.Nanosecond) // sub-microsecond part the store drops
	opts := RingOptions{RotationInterval: time.Hour, RetireAfter: 20 * time.Minute, Now: c.Now}

	// Concurrent bootstrap: one active key.
	rings := make([]*Ring, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() { rings[i], errs[i] = NewRing(ctx, db, testSealer(), opts) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rings {
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	states := byState(t, db)
	if len(states[store.KeyActive]) != 1 {
		t.Fatalf("states %v", states)
	}
	tok := mustSign(t, rings[0], "p")

	// Concurrent rotation: exactly one wins.
	c.Advance(time.Hour)
	wins := 0
	var mu sync.Mutex
	for _, r := range rings {
		wg.Go(func() {
			rotated, err := r.MaybeRotate(ctx)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
			if rotated {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d rings rotated, want 1", wins)
	}
	after := byState(t, db)
	if !slices.Equal(after[store.KeyActive], states[store.KeyNext]) || !slices.Equal(after[store.KeyRetiring], states[store.KeyActive]) {
		t.Fatalf("before %v after %v", states, after)
	}
	for _, r := range rings {
		if err := r.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		mustVerify(t, r, tok, "p", states[store.KeyActive][0])
	}

	c.Advance(20 * time.Minute)
	if _, err := rings[1].MaybeRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := byState(t, db)[store.KeyRetired]; !slices.Equal(got, states[store.KeyActive]) {
		t.Fatalf("retired %v, want %v", got, states[store.KeyActive])
	}
	if _, _, err := rings[1].Verify(tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}

	// Wrong KEK against the real store fails closed.
	if _, err := NewRing(ctx, db, otherSealer(), opts); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong kek: %v", err)
	}
}
