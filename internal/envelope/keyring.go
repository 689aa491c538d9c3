package envelope

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ErrOpen is keys.ErrOpen: a sealed value did not open (tampered, truncated,
// bound to another row, column or purpose, or sealed under a key this process
// does not have). Which one is deliberately not said.
var ErrOpen = keys.ErrOpen

// ErrWrongKEK means a data key is wrapped by another KEK than the configured one,
// or does not unwrap under it. Start-up fails closed with it.
var ErrWrongKEK = errors.New("the kek does not unwrap the data keys")

const (
	version2  = 0x02
	idSize    = 8
	nonceSize = 12
	tagSize   = 16
	header    = 1 + idSize + nonceSize
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = header + tagSize
	keySize  = 32

	defaultReloadInterval = time.Minute
	// minMissReload bounds how often an unknown DEK id in a value makes Open
	// reload the keys from the store, so junk values cannot hammer it.
	minMissReload = time.Second
)

// Store is what the keyring needs of the store: *store.DB is one.
type Store interface {
	DataKeys(ctx context.Context) ([]store.DataKey, error)
	AddDataKeys(ctx context.Context, retire []string, add []store.DataKey, at time.Time) error
}

// Options configures a Keyring. Zero values are the documented defaults.
type Options struct {
	// SealPurposes is the closed set of purposes Seal accepts, each with its own
	// DEK. Nil: SealPurposes().
	SealPurposes []string
	// IndexPurposes is the closed set of purposes Index accepts, each with its
	// own index key. Nil: IndexPurposes(). Index panics on any other purpose (a
	// programming error: a lookup under an unknown key would silently miss).
	IndexPurposes []string
	// ReloadInterval is how often Seal notices DEKs rotated by another process
	// (`gatehouse keys rotate --data`) and starts sealing under them. 0: 1m.
	ReloadInterval time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives reload failures. Nil: discarded.
	Logger *slog.Logger
}

// dataKey is one unwrapped DEK. It never prints its key.
type dataKey struct {
	id      string
	raw     [idSize]byte
	purpose string
	kind    string
	state   string
	kekID   string
	created time.Time
	aead    cipher.AEAD // seal keys
	index   []byte      // index keys
}

func (d *dataKey) String() string { return "DEK(" + d.id + ", REDACTED)" }

func (d *dataKey) LogValue() slog.Value { return slog.StringValue(d.String()) }

// snapshot is never modified after it is published.
type snapshot struct {
	rows   []store.DataKey
	byID   map[[idSize]byte]*dataKey
	active map[string]*dataKey // seal purpose → active DEK
	index  map[string]*dataKey // index purpose → index key
}

// Keyring seals and opens values under DEKs wrapped by a KEK. Seal, Open and
// Index read an immutable snapshot and take no locks. It is safe for concurrent
// use.
type Keyring struct {
	st       Store
	kek      keys.Wrapper
	legacy   *keys.Sealer // version-1 values; nil for a KMS KEK
	local    *keys.KEK
	sealP    []string
	indexP   []string
	every    time.Duration
	now      func() time.Time
	log      *slog.Logger
	mu       sync.Mutex // serialises reloads and key creation
	snap     atomic.Pointer[snapshot]
	lastLoad atomic.Int64 // unix nanoseconds of the last reload attempt
	bgReload atomic.Bool
}

// String, GoString, Format and LogValue mask the keyring: it holds keys.
func (k *Keyring) String() string             { return "envelope.Keyring(REDACTED)" }
func (k *Keyring) GoString() string           { return k.String() }
func (k *Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }
func (k *Keyring) LogValue() slog.Value       { return slog.StringValue(k.String()) }

// New loads the data keys from st and unwraps them with kek, creating an active
// DEK for every sealing purpose and an index key for every index purpose that
// has none. It fails closed with ErrWrongKEK when any stored key is wrapped by
// another KEK or does not unwrap. If kek is a local *keys.KEK, values sealed in
// the version-1 format under it still open, and index keys created here adopt
// its version-1 index keys, so blind indexes written before envelope encryption
// keep matching.
func New(ctx context.Context, st Store, kek keys.Wrapper, opts Options) (*Keyring, error) {
	if st == nil || kek == nil {
		return nil, errors.New("envelope: new: a store and a kek are required")
	}
	k := &Keyring{st: st, kek: kek, sealP: opts.SealPurposes, indexP: opts.IndexPurposes,
		every: opts.ReloadInterval, now: opts.Now, log: opts.Logger}
	if k.sealP == nil {
		k.sealP = SealPurposes()
	}
	if k.indexP == nil {
		k.indexP = IndexPurposes()
	}
	if k.every <= 0 {
		k.every = defaultReloadInterval
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if local, ok := kek.(*keys.KEK); ok {
		k.local, k.legacy = local, keys.NewSealer(local)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := k.reloadLocked(ctx); err != nil {
			return nil, err
		}
		add, err := k.missingKeys(ctx)
		if err != nil {
			return nil, err
		}
		if len(add) == 0 {
			return k, nil
		}
		err = st.AddDataKeys(ctx, nil, add, k.now())
		if err == nil {
			continue // load what was just added
		}
		// Another replica created them first: load theirs.
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		return nil, fmt.Errorf("envelope: new: %w", err)
	}
}

// KEKID is the ID of the KEK the keyring's DEKs are wrapped by.
func (k *Keyring) KEKID() string { return k.kek.ID() }

func newID() ([idSize]byte, string) {
	var b [idSize]byte
	rand.Read(b[:])
	return b, hex.EncodeToString(b[:])
}

func wrapAAD(id, kind, purpose string) []string {
	return []string{"gatehouse data key", id, kind, purpose}
}

// newKey makes a wrapped DEK. For an index key under a local KEK, the key is
// the version-1 index key of the purpose (see New).
func (k *Keyring) newKey(ctx context.Context, kind, purpose string, at time.Time) (store.DataKey, error) {
	_, id := newID()
	var raw []byte
	if kind == store.DataKeyIndex && k.local != nil {
		raw = k.local.DeriveLegacyIndexKey(purpose)
	} else {
		raw = make([]byte, keySize)
		rand.Read(raw)
	}
	defer clear(raw)
	w, err := k.kek.Wrap(ctx, raw, wrapAAD(id, kind, purpose)...)
	if err != nil {
		return store.DataKey{}, fmt.Errorf("envelope: new data key: %w", err)
	}
	return store.DataKey{ID: id, Purpose: purpose, Kind: kind, State: store.DataKeyActive, Wrapped: w,
		KEKID: k.kek.ID(), CreatedAt: at}, nil
}

func (k *Keyring) missingKeys(ctx context.Context) ([]store.DataKey, error) {
	s := k.snap.Load()
	var add []store.DataKey
	now := k.now()
	for _, p := range k.sealP {
		if s.active[p] == nil {
			dk, err := k.newKey(ctx, store.DataKeySeal, p, now)
			if err != nil {
				return nil, err
			}
			add = append(add, dk)
		}
	}
	for _, p := range k.indexP {
		if s.index[p] == nil {
			dk, err := k.newKey(ctx, store.DataKeyIndex, p, now)
			if err != nil {
				return nil, err
			}
			add = append(add, dk)
		}
	}
	return add, nil
}

// Reload re-reads the data keys from the store, so that DEKs made by another
// process (a rotation) are used. Keys already unwrapped are not unwrapped again.
func (k *Keyring) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(ctx)
}

func (k *Keyring) reloadLocked(ctx context.Context) error {
	k.lastLoad.Store(k.now().UnixNano())
	rows, err := k.st.DataKeys(ctx)
	if err != nil {
		return fmt.Errorf("envelope: load data keys: %w", err)
	}
	old := k.snap.Load()
	s := &snapshot{rows: rows, byID: map[[idSize]byte]*dataKey{}, active: map[string]*dataKey{}, index: map[string]*dataKey{}}
	for _, r := range rows {
		raw, err := hex.DecodeString(r.ID)
		if err != nil || len(raw) != idSize {
			return fmt.Errorf("envelope: data key %q: malformed id", r.ID)
		}
		var id [idSize]byte
		copy(id[:], raw)
		var d *dataKey
		if old != nil {
			if prev := old.byID[id]; prev != nil && prev.kekID == r.KEKID && prev.purpose == r.Purpose && prev.kind == r.Kind {
				cp := *prev
				d = &cp
			}
		}
		if d == nil {
			if d, err = k.unwrap(ctx, r, id); err != nil {
				return err
			}
		}
		d.state = r.State
		s.byID[id] = d
		if r.State != store.DataKeyActive {
			continue
		}
		switch r.Kind {
		case store.DataKeySeal:
			s.active[r.Purpose] = d
		case store.DataKeyIndex:
			s.index[r.Purpose] = d
		}
	}
	k.snap.Store(s)
	return nil
}

func (k *Keyring) unwrap(ctx context.Context, r store.DataKey, id [idSize]byte) (*dataKey, error) {
	// Why fail closed: a KEK that does not unwrap the stored keys is the wrong
	// KEK (or a rotation half done); serving with it would mint values nobody can
	// later read, or refuse every sign-in piecemeal.
	if r.KEKID != k.kek.ID() {
		return nil, fmt.Errorf("envelope: data key %s (%s %s) is wrapped by kek %s, but the configured kek is %s (wrong kek, or a kek rotation not finished?): %w",
			r.ID, r.Kind, r.Purpose, r.KEKID, k.kek.ID(), ErrWrongKEK)
	}
	raw, err := k.kek.Unwrap(ctx, r.Wrapped, wrapAAD(r.ID, r.Kind, r.Purpose)...)
	if err != nil {
		return nil, fmt.Errorf("envelope: data key %s (%s %s) does not unwrap under kek %s (altered in the store?): %w",
			r.ID, r.Kind, r.Purpose, k.kek.ID(), ErrWrongKEK)
	}
	defer clear(raw)
	if len(raw) != keySize {
		return nil, fmt.Errorf("envelope: data key %s: unwraps to %d bytes: %w", r.ID, len(raw), ErrWrongKEK)
	}
	d := &dataKey{id: r.ID, raw: id, purpose: r.Purpose, kind: r.Kind, kekID: r.KEKID, created: r.CreatedAt}
	switch r.Kind {
	case store.DataKeySeal:
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("envelope: data key %s: %w", r.ID, err)
		}
		if d.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("envelope: data key %s: %w", r.ID, err)
		}
	case store.DataKeyIndex:
		d.index = bytes.Clone(raw)
	default:
		return nil, fmt.Errorf("envelope: data key %s: unknown kind %q", r.ID, r.Kind)
	}
	return d, nil
}

// maybeReload starts a background reload when the last one is older than the
// reload interval; at most one runs at a time.
func (k *Keyring) maybeReload() {
	if k.now().UnixNano()-k.lastLoad.Load() < int64(k.every) || !k.bgReload.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer k.bgReload.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Reload(ctx); err != nil {
			k.log.Warn("envelope: reload data keys", "error", err.Error())
		}
	}()
}

// Seal encrypts plaintext for purpose under the purpose's active DEK, bound to
// aad (conventionally table, column, row id).
func (k *Keyring) Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error) {
	k.maybeReload()
	d := k.snap.Load().active[purpose]
	if d == nil {
		return nil, fmt.Errorf("envelope: seal: %q is not a sealing purpose", purpose)
	}
	out := make([]byte, header, header+len(plaintext)+tagSize)
	out[0] = version2
	copy(out[1:], d.raw[:])
	// Random 96-bit nonces: safe for 2^32 seals per DEK; DEKs are per purpose and
	// rotate with `keys rotate --data` long before that.
	rand.Read(out[1+idSize : header])
	ad := keys.AssociatedData(out[:1+idSize], purpose, aad)
	return d.aead.Seal(out, out[1+idSize:header], plaintext, ad), nil
}

// Open decrypts a value made by Seal (or, under a local KEK, by the version-1
// keys.Sealer) with the same purpose and aad. Every failure wraps ErrOpen.
func (k *Keyring) Open(purpose string, sealed []byte, aad ...string) ([]byte, error) {
	if len(sealed) > 0 && sealed[0] != version2 {
		if k.legacy == nil {
			return nil, openError(purpose)
		}
		return k.legacy.Open(purpose, sealed, aad...)
	}
	if len(sealed) < Overhead {
		return nil, openError(purpose)
	}
	var id [idSize]byte
	copy(id[:], sealed[1:1+idSize])
	d := k.snap.Load().byID[id]
	if d == nil && k.now().UnixNano()-k.lastLoad.Load() >= int64(minMissReload) {
		// A DEK made by a rotation running in another process: load it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := k.Reload(ctx)
		cancel()
		if err != nil {
			k.log.Warn("envelope: reload data keys", "error", err.Error())
		}
		d = k.snap.Load().byID[id]
	}
	// Why the purpose check: a DEK serves one purpose; a value sealed for
	// another purpose must not open here even if the AAD were forged to match.
	if d == nil || d.kind != store.DataKeySeal || d.purpose != purpose {
		return nil, openError(purpose)
	}
	ad := keys.AssociatedData(sealed[:1+idSize], purpose, aad)
	pt, err := d.aead.Open(nil, sealed[1+idSize:header], sealed[header:], ad)
	if err != nil {
		return nil, openError(purpose)
	}
	return pt, nil
}

func openError(purpose string) error { return fmt.Errorf("envelope: open %s: %w", purpose, ErrOpen) }

// Index returns the keyed blind index of value for purpose: HMAC-SHA256 under
// the purpose's index key, which never rotates (a rotation would orphan every
// index already stored) and survives KEK rotation because it is stored wrapped.
// It panics on a purpose not in Options.IndexPurposes.
func (k *Keyring) Index(purpose string, value []byte) []byte {
	d := k.snap.Load().index[purpose]
	if d == nil {
		panic(fmt.Sprintf("envelope: index purpose %q is not registered", purpose))
	}
	m := hmac.New(sha256.New, d.index)
	m.Write(value)
	return m.Sum(nil)
}

// Explain says, for diagnostics, why sealed may not open: which key it names.
func (k *Keyring) Explain(sealed []byte) string {
	v, id := Describe(sealed)
	switch v {
	case 1:
		if k.legacy == nil {
			return "it is in the version-1 format, which only a local kek opens"
		}
		return k.legacy.Explain(sealed)
	case 2:
		var raw [idSize]byte
		b, _ := hex.DecodeString(id)
		copy(raw[:], b)
		if k.snap.Load().byID[raw] == nil {
			return fmt.Sprintf("it names data key %s, which is not in the store", id)
		}
	}
	return ""
}

// Describe reports a sealed value's format version (1 or 2; 0 if neither) and
// the key it names (the KEK id for version 1, the DEK id for version 2). It is
// not authenticated until the value opens.
func Describe(sealed []byte) (version int, keyID string) {
	if id, ok := keys.SealedKEKID(sealed); ok {
		return 1, id
	}
	if len(sealed) >= Overhead && sealed[0] == version2 {
		return 2, hex.EncodeToString(sealed[1 : 1+idSize])
	}
	return 0, ""
}

// KeyInfo describes one data key, without its material.
type KeyInfo struct {
	ID        string
	Purpose   string
	Kind      string
	State     string
	KEKID     string
	CreatedAt time.Time
	RetiredAt *time.Time
}

// Keys lists the data keys as last loaded, oldest first.
func (k *Keyring) Keys() []KeyInfo {
	rows := k.snap.Load().rows
	out := make([]KeyInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, KeyInfo{ID: r.ID, Purpose: r.Purpose, Kind: r.Kind, State: r.State, KEKID: r.KEKID,
			CreatedAt: r.CreatedAt, RetiredAt: r.RetiredAt})
	}
	return out
}

// State returns the state ("active", "retired") of the DEK with the given id,
// or "" if the keyring does not know it.
func (k *Keyring) State(dekID string) string {
	for _, r := range k.snap.Load().rows {
		if r.ID == dekID {
			return r.State
		}
	}
	return ""
}

// NextKeys prepares a rotation of every sealing purpose: the ids of the active
// DEKs to retire and new active DEKs, wrapped, to add in their place. Index
// keys are never rotated.
func (k *Keyring) NextKeys(ctx context.Context) (retire []string, add []store.DataKey, err error) {
	s := k.snap.Load()
	now := k.now()
	for _, p := range k.sealP {
		if d := s.active[p]; d != nil {
			retire = append(retire, d.id)
		}
		dk, err := k.newKey(ctx, store.DataKeySeal, p, now)
		if err != nil {
			return nil, nil, err
		}
		add = append(add, dk)
	}
	slices.Sort(retire)
	return retire, add, nil
}

// Rewrap unwraps every data key with the keyring's KEK and wraps it with next,
// for a KEK rotation. The result is applied with store.RewrapDataKeys; the
// keys themselves (and so every sealed value and blind index) do not change.
func (k *Keyring) Rewrap(ctx context.Context, next keys.Wrapper) ([]store.Rewrap, error) {
	if next.ID() == k.kek.ID() {
		return nil, errors.New("envelope: rewrap: the new kek is the current kek")
	}
	var out []store.Rewrap
	for _, r := range k.snap.Load().rows {
		raw, err := k.kek.Unwrap(ctx, r.Wrapped, wrapAAD(r.ID, r.Kind, r.Purpose)...)
		if err != nil {
			return nil, fmt.Errorf("envelope: rewrap %s: %w", r.ID, ErrWrongKEK)
		}
		w, err := next.Wrap(ctx, raw, wrapAAD(r.ID, r.Kind, r.Purpose)...)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("envelope: rewrap %s: %w", r.ID, err)
		}
		out = append(out, store.Rewrap{ID: r.ID, OldKEKID: r.KEKID, Wrapped: w, KEKID: next.ID()})
	}
	return out, nil
}
