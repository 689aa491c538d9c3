package keys

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// KeyStore is the persistence the Ring needs. *store.DB satisfies it.
//
// Bootstrap safety relies on the store refusing a second key in state "active"
// (a unique index over the active state): CreateSigningKey then returns
// store.ErrConflict to the replica that lost a concurrent bootstrap. If a store
// does not enforce it, the Ring still converges (it signs with the most recently
// activated key and the next rotation retires every other active key), but two
// keys may sign for one rotation period.
type KeyStore interface {
	// CreateSigningKey inserts k; store.ErrConflict on a duplicate id.
	CreateSigningKey(ctx context.Context, k *store.SigningKey) error
	// SigningKeys returns every signing key, oldest first.
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	// TransitionKeys applies ts in order in one transaction, each conditional on
	// the key still being in From (setting ActivatedAt, RetiringAt or RetiredAt to
	// At as the target state requires); any miss is store.ErrConflict with nothing
	// applied. Then it inserts newKey if non-nil.
	TransitionKeys(ctx context.Context, ts []store.KeyTransition, newKey *store.SigningKey) error
}

// Token verification errors.
var (
	// ErrUnknownKey means the token's kid is not a published key of the ring. The
	// caller may ReloadIfStale and try once more: another replica may have
	// activated a key this one has not loaded yet.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrBadSignature means the signature does not verify under the named key, or
	// the header's algorithm is not that key's algorithm.
	ErrBadSignature = errors.New("bad token signature")
	// ErrMalformed means the token is not a compact JWS this ring accepts.
	ErrMalformed = errors.New("malformed token")
	// ErrNoNextKey means a rotation was asked for while no next key was published;
	// one has been created, and rotating again after JWKS caches refresh succeeds.
	ErrNoNextKey = errors.New("no next signing key published")
)

// ValueSealer seals and opens values at rest bound to a purpose and associated
// data; *Sealer (the version-1 format) and the envelope keyring implement it. A
// sealer that also has Explain(sealed) string gets asked why a key did not open.
type ValueSealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
}

// Sealing parameters of private keys: purpose and associated data (table, column,
// then the row's key id), so a sealed private key copied onto another key's row
// does not open.
const (
	signingKeyPurpose = "signing_key"
	signingKeyTable   = "signing_keys"
	signingKeyColumn  = "private"
)

const (
	defaultRetireAfter    = 20 * time.Minute
	defaultReloadInterval = time.Minute
)

// RingOptions configures a Ring. Zero values are the documented defaults.
type RingOptions struct {
	// Algorithm of new keys: "ES256" (default when empty) or "EdDSA". Existing
	// keys keep their own algorithm; a change takes effect with the next key
	// generated.
	Algorithm string
	// RotationInterval is the active key's age at which MaybeRotate rotates;
	// 0 means never automatically (only Rotate).
	RotationInterval time.Duration
	// RetireAfter is how long a retiring key stays published: at least the
	// maximum token lifetime plus the JWKS cache TTL of verifiers. 0 means 20m.
	RetireAfter time.Duration
	// ReloadInterval is Run's period; 0 means 1m.
	ReloadInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
	// OnRotate, if set, is called after each successful rotation made by this
	// process (for audit events).
	OnRotate func(ctx context.Context, r RotateResult)
}

// RotateResult says what a rotation did, by key id.
type RotateResult struct {
	Activated string   // the former next key, now signing
	Retiring  string   // the former active key
	Next      string   // the newly generated next key
	Retired   []string // retiring keys whose publication period ended
}

// KeyInfo describes one signing key, for listing. It holds no key material.
type KeyInfo struct {
	ID          string
	Algorithm   string
	State       string
	CreatedAt   time.Time
	ActivatedAt *time.Time
	RetiringAt  *time.Time
	RetiredAt   *time.Time
}

// Ring is the set of token-signing keys. Sign, Verify, JWKS and Keys read an
// immutable snapshot and take no locks; Reload, Rotate and MaybeRotate are
// serialised.
type Ring struct {
	st          KeyStore
	sealer      ValueSealer
	alg         jose.SignatureAlgorithm
	rotateEvery time.Duration
	retireAfter time.Duration
	reloadEvery time.Duration
	now         func() time.Time
	log         *slog.Logger
	onRotate    func(context.Context, RotateResult)

	mu         sync.Mutex           // serialises writers; guards opened
	opened     map[string]openedKey // kid → private key opened from these sealed bytes
	lastReload atomic.Int64         // r.now() in unix nanoseconds of the last reload attempt
	snap       atomic.Pointer[snapshot]
}

type openedKey struct {
	sealed []byte
	priv   crypto.Signer
}

type verifyKey struct {
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey
}

// snapshot is never modified after it is published.
type snapshot struct {
	rows     []store.SigningKey
	verify   map[string]verifyKey // next, active and retiring keys
	active   []store.SigningKey   // normally one; the signer is signer
	next     []store.SigningKey   // oldest first
	retiring []store.SigningKey
	signer   signerKey
	jwks     []byte
}

type signerKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// NewRing loads the signing keys from st. When there is no active key it
// bootstraps an active and a next key; if another replica bootstraps at the same
// moment, the loser's insert conflicts and it uses the winner's keys. It fails
// closed when a key cannot be opened with the KEK.
func NewRing(ctx context.Context, st KeyStore, s ValueSealer, opts RingOptions) (*Ring, error) {
	r := &Ring{
		st:          st,
		sealer:      s,
		rotateEvery: opts.RotationInterval,
		retireAfter: cmp.Or(opts.RetireAfter, defaultRetireAfter),
		reloadEvery: cmp.Or(opts.ReloadInterval, defaultReloadInterval),
		now:         opts.Now,
		log:         opts.Logger,
		onRotate:    opts.OnRotate,
		opened:      map[string]openedKey{},
	}
	switch opts.Algorithm {
	case "", "ES256":
		r.alg = jose.ES256
	case "EdDSA":
		r.alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("keys: new ring: algorithm %q is not supported; use ES256 or EdDSA", opts.Algorithm)
	}
	if st == nil || s == nil {
		return nil, errors.New("keys: new ring: a key store and a sealer are required")
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	snap, problems, err := r.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: new ring: %w", err)
	}
	if err := errors.Join(problems...); err != nil {
		// Why fail at start-up: a key row this KEK cannot vouch for means the wrong
		// KEK or a tampered store; the operator must see it before serving.
		return nil, fmt.Errorf("keys: new ring: %w", err)
	}
	if len(snap.active) == 0 {
		if err := r.bootstrap(ctx); err != nil {
			return nil, fmt.Errorf("keys: new ring: %w", err)
		}
		snap, problems, err = r.load(ctx)
		if err != nil {
			return nil, fmt.Errorf("keys: new ring: %w", err)
		}
		if err := errors.Join(problems...); err != nil {
			return nil, fmt.Errorf("keys: new ring: %w", err)
		}
		if len(snap.active) == 0 {
			return nil, errors.New("keys: new ring: no active signing key after bootstrap")
		}
	}
	r.snap.Store(snap)
	return r, nil
}

func (r *Ring) bootstrap(ctx context.Context) error {
	now := r.now()
	active, err := r.generate(store.KeyActive, now)
	if err != nil {
		return err
	}
	switch err := r.st.CreateSigningKey(ctx, active); {
	case errors.Is(err, store.ErrConflict):
		// Another replica bootstrapped first: use its keys.
		r.log.InfoContext(ctx, "signing keys bootstrapped by another replica")
		return nil
	case err != nil:
		return fmt.Errorf("bootstrap: %w", err)
	}
	next, err := r.generate(store.KeyNext, now)
	if err != nil {
		return err
	}
	if err := r.st.CreateSigningKey(ctx, next); err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	r.log.InfoContext(ctx, "signing keys bootstrapped", "active", active.ID, "next", next.ID, "alg", string(r.alg))
	return nil
}

// Reload reads the keys from the store and publishes them. A key row that the KEK
// does not vouch for is left out (never trusted for verification) and reported in
// the error; if the active key is among them, nothing changes.
func (r *Ring) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

func (r *Ring) reloadLocked(ctx context.Context) error {
	snap, problems, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("keys: reload: %w", err)
	}
	if len(snap.active) == 0 {
		return fmt.Errorf("keys: reload: no usable active signing key: %w", errors.Join(problems...))
	}
	r.snap.Store(snap)
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("keys: reload: ignored signing keys: %w", err)
	}
	return nil
}

// ReloadIfStale reloads unless a reload was attempted within minInterval. It is
// for unknown-kid handling: however many tokens name an unknown kid, the store is
// read at most once per minInterval.
func (r *Ring) ReloadIfStale(ctx context.Context, minInterval time.Duration) error {
	if r.fresh(minInterval) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Re-check: callers that queued behind a reload share its result.
	if r.fresh(minInterval) {
		return nil
	}
	return r.reloadLocked(ctx)
}

func (r *Ring) fresh(minInterval time.Duration) bool {
	last := r.lastReload.Load()
	return last != 0 && r.now().Sub(time.Unix(0, last)) < minInterval
}

// load reads and validates every key. Validation failures of individual keys are
// returned as problems and those keys are left out; err is for the store failing.
func (r *Ring) load(ctx context.Context) (*snapshot, []error, error) {
	r.lastReload.Store(r.now().UnixNano())
	rows, err := r.st.SigningKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	snap := &snapshot{rows: rows, verify: make(map[string]verifyKey, 4)}
	opened := make(map[string]openedKey, 4)
	var problems []error
	var signers []signerKey
	for _, row := range rows {
		switch row.State {
		case store.KeyNext, store.KeyActive, store.KeyRetiring:
		case store.KeyRetired:
			continue
		default:
			problems = append(problems, fmt.Errorf("signing key %s has unknown state %q", row.ID, row.State))
			continue
		}
		vk, priv, err := r.validate(row)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		opened[row.ID] = openedKey{sealed: row.PrivateSealed, priv: priv}
		snap.verify[row.ID] = vk
		switch row.State {
		case store.KeyNext:
			snap.next = append(snap.next, row)
		case store.KeyActive:
			snap.active = append(snap.active, row)
			signers = append(signers, signerKey{kid: row.ID, alg: vk.alg, priv: priv})
		case store.KeyRetiring:
			snap.retiring = append(snap.retiring, row)
		}
	}
	r.opened = opened
	if len(snap.active) > 1 {
		// Only possible with a store that does not enforce one active key. Sign with
		// the most recently activated (every replica picks the same one); the next
		// rotation retires all of them.
		r.log.ErrorContext(ctx, "more than one active signing key; the next rotation retires the extra ones", "count", len(snap.active))
		best := 0
		for i := 1; i < len(snap.active); i++ {
			if activeAfter(snap.active[i], snap.active[best]) {
				best = i
			}
		}
		signers[0] = signers[best]
	}
	if len(signers) > 0 {
		snap.signer = signers[0]
	}
	snap.jwks, err = buildJWKS(snap)
	if err != nil {
		return nil, nil, err
	}
	return snap, problems, nil
}

func activeAfter(a, b store.SigningKey) bool {
	ta, tb := activatedAt(a), activatedAt(b)
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.ID < b.ID
}

func activatedAt(k store.SigningKey) time.Time {
	if k.ActivatedAt != nil {
		return *k.ActivatedAt
	}
	return k.CreatedAt
}

// validate checks a published key row end to end.
//
// Why every published key (not only the active one) must open: the store is
// untrusted. Someone able to write to it could insert a row carrying their own
// public key; it would then verify their forged tokens. Such a row cannot carry a
// private half sealed under our KEK and bound to its kid, so it is refused here.
func (r *Ring) validate(row store.SigningKey) (verifyKey, crypto.Signer, error) {
	vk, err := parsePublic(row)
	if err != nil {
		return verifyKey{}, nil, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	priv, err := r.openPrivate(row)
	if err != nil {
		return verifyKey{}, nil, err
	}
	if !publicEqual(priv.Public(), vk.pub) {
		return verifyKey{}, nil, fmt.Errorf("signing key %s: the private half does not match the public key", row.ID)
	}
	return vk, priv, nil
}

func (r *Ring) openPrivate(row store.SigningKey) (crypto.Signer, error) {
	if c, ok := r.opened[row.ID]; ok && bytes.Equal(c.sealed, row.PrivateSealed) {
		return c.priv, nil
	}
	der, err := r.sealer.Open(signingKeyPurpose, row.PrivateSealed, signingKeyTable, signingKeyColumn, row.ID)
	if err != nil {
		hint := ""
		if e, ok := r.sealer.(interface{ Explain(sealed []byte) string }); ok {
			if h := e.Explain(row.PrivateSealed); h != "" {
				hint = "; " + h
			}
		}
		return nil, fmt.Errorf("the KEK does not open signing key %s (wrong kek?%s): %w", row.ID, hint, err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: private key: %w", row.ID, err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		if row.Algorithm != string(jose.ES256) || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: private key type does not match algorithm %q", row.ID, row.Algorithm)
		}
		return k, nil
	case ed25519.PrivateKey:
		if row.Algorithm != string(jose.EdDSA) {
			return nil, fmt.Errorf("signing key %s: private key type does not match algorithm %q", row.ID, row.Algorithm)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("signing key %s: unsupported private key type %T", row.ID, k)
	}
}

// parsePublic parses a row's public JWK, checks that it is a public key of the
// row's algorithm and that the row's id is its RFC 7638 thumbprint.
func parsePublic(row store.SigningKey) (verifyKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(row.PublicJWK); err != nil {
		return verifyKey{}, fmt.Errorf("public jwk: %w", err)
	}
	if !jwk.IsPublic() {
		return verifyKey{}, errors.New("public jwk is not a public key")
	}
	vk := verifyKey{alg: jose.SignatureAlgorithm(row.Algorithm), pub: jwk.Key}
	switch pub := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if vk.alg != jose.ES256 || pub.Curve != elliptic.P256() {
			return verifyKey{}, fmt.Errorf("public key type does not match algorithm %q", row.Algorithm)
		}
	case ed25519.PublicKey:
		if vk.alg != jose.EdDSA {
			return verifyKey{}, fmt.Errorf("public key type does not match algorithm %q", row.Algorithm)
		}
	default:
		return verifyKey{}, fmt.Errorf("unsupported public key type %T", jwk.Key)
	}
	kid, err := thumbprint(jwk.Key)
	if err != nil {
		return verifyKey{}, err
	}
	if kid != row.ID {
		return verifyKey{}, errors.New("key id is not the thumbprint of the public key")
	}
	return vk, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// generate makes a new key pair of the ring's algorithm, its private half sealed
// and bound to its kid.
func (r *Ring) generate(state string, now time.Time) (*store.SigningKey, error) {
	var priv crypto.Signer
	switch r.alg {
	case jose.EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		priv = k
	default:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		priv = k
	}
	return r.keyRow(priv, state, now)
}

// keyRow builds the store row of priv: public JWK, kid and sealed private half.
func (r *Ring) keyRow(priv crypto.Signer, state string, now time.Time) (*store.SigningKey, error) {
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	pub, err := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(r.alg), Use: "sig"}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("generate key: public jwk: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("generate key: pkcs8: %w", err)
	}
	defer clear(der)
	sealed, err := r.sealer.Seal(signingKeyPurpose, der, signingKeyTable, signingKeyColumn, kid)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k := &store.SigningKey{
		ID:            kid,
		Algorithm:     string(r.alg),
		State:         state,
		PublicJWK:     pub,
		PrivateSealed: sealed,
		CreatedAt:     now,
	}
	if state == store.KeyActive {
		k.ActivatedAt = &now
	}
	return k, nil
}

// buildJWKS renders the published keys: active first, then next, then retiring.
func buildJWKS(s *snapshot) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, group := range [][]store.SigningKey{s.active, s.next, s.retiring} {
		for _, row := range group {
			vk := s.verify[row.ID]
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: vk.pub, KeyID: row.ID, Algorithm: string(vk.alg), Use: "sig"})
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return b, nil
}

// JWKS returns the JSON Web Key Set {"keys":[...]} of the next, active and
// retiring public keys. The bytes are rendered once per change of the key set.
func (r *Ring) JWKS() []byte { return slices.Clone(r.snap.Load().jwks) }

// Keys lists every key in the store as of the last reload, oldest first.
func (r *Ring) Keys() []KeyInfo {
	rows := r.snap.Load().rows
	out := make([]KeyInfo, len(rows))
	for i, k := range rows {
		out[i] = KeyInfo{
			ID:          k.ID,
			Algorithm:   k.Algorithm,
			State:       k.State,
			CreatedAt:   k.CreatedAt,
			ActivatedAt: copyTime(k.ActivatedAt),
			RetiringAt:  copyTime(k.RetiringAt),
			RetiredAt:   copyTime(k.RetiredAt),
		}
	}
	return out
}

// copyTime keeps callers from writing through to the shared snapshot.
func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// Rotate moves the ring one step, in one conditional TransitionKeys call: retiring
// keys past RetireAfter become retired, the active key becomes retiring, the oldest
// next key becomes active, and a new next key is generated. It works from the last
// loaded state; if another replica changed the keys first the store reports
// store.ErrConflict, the ring reloads, and the error is returned wrapped.
func (r *Ring) Rotate(ctx context.Context) (RotateResult, error) {
	r.mu.Lock()
	res, rotated, err := r.rotateLocked(ctx)
	r.mu.Unlock()
	r.notify(ctx, res, rotated)
	return res, err
}

// notify calls OnRotate outside the lock, so that the hook may use the ring.
func (r *Ring) notify(ctx context.Context, res RotateResult, rotated bool) {
	if rotated && r.onRotate != nil {
		r.onRotate(ctx, res)
	}
}

// rotateLocked reports whether the store changed (rotated) separately from err:
// a reload failing after a committed rotation is still a rotation.
func (r *Ring) rotateLocked(ctx context.Context) (RotateResult, bool, error) {
	snap := r.snap.Load()
	now := r.now()
	if len(snap.next) == 0 {
		// Why not activate a fresh key at once: verifiers would meet its kid before
		// any JWKS they cached lists it. Publish it now; it activates next time.
		next, err := r.generate(store.KeyNext, now)
		if err != nil {
			return RotateResult{}, false, fmt.Errorf("keys: rotate: %w", err)
		}
		if err := r.st.TransitionKeys(ctx, nil, next); err != nil {
			return RotateResult{}, false, fmt.Errorf("keys: rotate: publish next key: %w", err)
		}
		if err := r.reloadLocked(ctx); err != nil {
			r.log.ErrorContext(ctx, "reload after publishing a next key", "error", err)
		}
		return RotateResult{}, false, fmt.Errorf("keys: rotate: published %s as next; rotate again once JWKS caches have refreshed: %w", next.ID, ErrNoNextKey)
	}
	ts, retired := r.expiredRetiring(snap, now)
	res := RotateResult{Activated: snap.next[0].ID, Retired: retired}
	// Order matters for stores with a unique index on the active state: the old
	// active key leaves the state before the next key enters it.
	for i, a := range snap.active {
		if i == 0 || a.ID == snap.signer.kid {
			res.Retiring = a.ID
		}
		ts = append(ts, store.KeyTransition{ID: a.ID, From: store.KeyActive, To: store.KeyRetiring, At: now})
	}
	ts = append(ts, store.KeyTransition{ID: snap.next[0].ID, From: store.KeyNext, To: store.KeyActive, At: now})
	newNext, err := r.generate(store.KeyNext, now)
	if err != nil {
		return RotateResult{}, false, fmt.Errorf("keys: rotate: %w", err)
	}
	res.Next = newNext.ID
	if err := r.st.TransitionKeys(ctx, ts, newNext); err != nil {
		if errors.Is(err, store.ErrConflict) {
			if rerr := r.reloadLocked(ctx); rerr != nil {
				r.log.ErrorContext(ctx, "reload after losing a rotation race", "error", rerr)
			}
		}
		return RotateResult{}, false, fmt.Errorf("keys: rotate: %w", err)
	}
	r.log.InfoContext(ctx, "signing keys rotated", "activated", res.Activated, "retiring", res.Retiring, "next", res.Next, "retired", res.Retired)
	if err := r.reloadLocked(ctx); err != nil {
		return res, true, fmt.Errorf("keys: rotate: rotated, but reload failed: %w", err)
	}
	return res, true, nil
}

// expiredRetiring lists transitions retiring → retired for keys whose publication
// period has ended. A retiring key without a RetiringAt is kept: retiring it early
// would break tokens it signed.
func (r *Ring) expiredRetiring(snap *snapshot, now time.Time) ([]store.KeyTransition, []string) {
	var ts []store.KeyTransition
	var ids []string
	for _, k := range snap.retiring {
		if k.RetiringAt == nil || k.RetiringAt.Add(r.retireAfter).After(now) {
			continue
		}
		ts = append(ts, store.KeyTransition{ID: k.ID, From: store.KeyRetiring, To: store.KeyRetired, At: now})
		ids = append(ids, k.ID)
	}
	return ts, ids
}

// MaybeRotate rotates when the active key's ActivatedAt+RotationInterval is not
// after now (never when RotationInterval is 0). Otherwise it still retires expired
// retiring keys and publishes a next key if there is none. It reports whether it
// rotated.
func (r *Ring) MaybeRotate(ctx context.Context) (bool, error) {
	r.mu.Lock()
	if r.rotationDue() {
		res, rotated, err := r.rotateLocked(ctx)
		r.mu.Unlock()
		r.notify(ctx, res, rotated)
		return rotated, err
	}
	defer r.mu.Unlock()
	snap := r.snap.Load()
	now := r.now()
	ts, retired := r.expiredRetiring(snap, now)
	var newNext *store.SigningKey
	if len(snap.next) == 0 {
		var err error
		if newNext, err = r.generate(store.KeyNext, now); err != nil {
			return false, fmt.Errorf("keys: maybe rotate: %w", err)
		}
	}
	if len(ts) == 0 && newNext == nil {
		return false, nil
	}
	if err := r.st.TransitionKeys(ctx, ts, newNext); err != nil {
		if errors.Is(err, store.ErrConflict) {
			if rerr := r.reloadLocked(ctx); rerr != nil {
				r.log.ErrorContext(ctx, "reload after a conflicting key update", "error", rerr)
			}
		}
		return false, fmt.Errorf("keys: maybe rotate: %w", err)
	}
	if len(retired) > 0 {
		r.log.InfoContext(ctx, "signing keys retired", "retired", retired)
	}
	if newNext != nil {
		r.log.InfoContext(ctx, "next signing key published", "next", newNext.ID)
	}
	if err := r.reloadLocked(ctx); err != nil {
		return false, fmt.Errorf("keys: maybe rotate: %w", err)
	}
	return false, nil
}

// rotationDue reports whether an active key has reached RotationInterval and a
// next key is published to take over.
func (r *Ring) rotationDue() bool {
	snap := r.snap.Load()
	if r.rotateEvery <= 0 || len(snap.next) == 0 {
		return false
	}
	now := r.now()
	for _, a := range snap.active {
		if !activatedAt(a).Add(r.rotateEvery).After(now) {
			return true
		}
	}
	return false
}

// Run reloads and calls MaybeRotate every ReloadInterval until ctx is done,
// logging errors. Losing a race to another replica is logged at info level.
func (r *Ring) Run(ctx context.Context) {
	t := time.NewTicker(r.reloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.Reload(ctx); err != nil {
			r.log.ErrorContext(ctx, "signing keys reload", "error", err)
		}
		if _, err := r.MaybeRotate(ctx); err != nil {
			level := slog.LevelError
			if errors.Is(err, store.ErrConflict) {
				level = slog.LevelInfo // another replica rotated first
			}
			r.log.Log(ctx, level, "signing keys rotation", "error", err)
		}
	}
}
