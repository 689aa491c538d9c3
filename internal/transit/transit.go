package transit

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Domain errors.
var (
	ErrNotFound      = errors.New("transit key not found")
	ErrExists        = errors.New("transit key already exists")
	ErrBadName       = errors.New("transit key name must be 1-64 letters, digits, '-' or '_'")
	ErrBadCiphertext = errors.New("malformed transit ciphertext")
	// ErrRetired means the ciphertext's version is below min_decryption_version.
	ErrRetired = errors.New("key version is retired for decryption")
	// ErrDecrypt means the ciphertext does not decrypt under its version with
	// the given context (altered, another key, another context).
	ErrDecrypt = errors.New("ciphertext does not decrypt")
	ErrBadMin  = errors.New("min_decryption_version must be between 1 and the latest version")
	// ErrTooLarge means a plaintext or context exceeds MaxPlaintext.
	ErrTooLarge = errors.New("plaintext or context too large")
)

// MaxPlaintext bounds one plaintext and one context (decoded), in bytes.
const MaxPlaintext = 32 << 10

// Prefix starts every transit ciphertext.
const Prefix = "gh:v"

// maxVersion bounds the version number a ciphertext may name.
const maxVersion = 1 << 30

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Store is what transit needs of the store: *store.DB is one.
type Store interface {
	CreateTransitKey(ctx context.Context, name string, sealed []byte, at time.Time) error
	AddTransitKeyVersion(ctx context.Context, name string, version int, sealed []byte, at time.Time) error
	SetTransitMinDecryptionVersion(ctx context.Context, name string, min int, at time.Time) error
	TransitKey(ctx context.Context, name string) (*store.TransitKey, error)
}

// Sealer seals transit keys at rest; *envelope.Keyring is one.
type Sealer interface {
	Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error)
	Open(purpose string, sealed []byte, aad ...string) ([]byte, error)
}

// Options configures a Service. Zero values are the documented defaults.
type Options struct {
	// CacheTTL is how long an opened key (and its latest and minimum versions)
	// is used before being read again, so that a rotation or retirement made
	// through another replica is seen. 0: 5s.
	CacheTTL time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// KeyInfo describes a transit key, without its material.
type KeyInfo struct {
	Name                 string        `json:"name"`
	LatestVersion        int           `json:"latest_version"`
	MinDecryptionVersion int           `json:"min_decryption_version"`
	CreatedAt            time.Time     `json:"created_at"`
	Versions             []VersionInfo `json:"versions"`
}

// VersionInfo describes one version.
type VersionInfo struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
}

type openedKey struct {
	info     KeyInfo
	versions map[int]cipher.AEAD
	loaded   time.Time
}

const maxCached = 1024

// Service is the transit engine. It is safe for concurrent use.
type Service struct {
	st    Store
	s     Sealer
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	cache map[string]*openedKey
}

// New returns a Service.
func New(st Store, s Sealer, opts Options) *Service {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{st: st, s: s, ttl: opts.CacheTTL, now: opts.Now, cache: map[string]*openedKey{}}
}

// ValidName reports whether name is a valid transit key name.
func ValidName(name string) bool { return nameRe.MatchString(name) }

const purpose = store.PurposeTransitKey

func (sv *Service) newVersion(name string, v int) ([]byte, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw)
	return sv.s.Seal(purpose, raw, "transit_key_versions", "key", store.TransitKeyVersionID(name, v))
}

// Create makes key name with version 1.
func (sv *Service) Create(ctx context.Context, name string) (KeyInfo, error) {
	if !ValidName(name) {
		return KeyInfo{}, ErrBadName
	}
	sealed, err := sv.newVersion(name, 1)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("transit: create: %w", err)
	}
	if err := sv.st.CreateTransitKey(ctx, name, sealed, sv.now()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return KeyInfo{}, ErrExists
		}
		return KeyInfo{}, fmt.Errorf("transit: create: %w", err)
	}
	return sv.Info(ctx, name)
}

// Rotate adds a new latest version to key name; new encryptions use it.
func (sv *Service) Rotate(ctx context.Context, name string) (KeyInfo, error) {
	if !ValidName(name) {
		return KeyInfo{}, ErrBadName
	}
	for attempt := 0; ; attempt++ {
		k, err := sv.load(ctx, name, true)
		if err != nil {
			return KeyInfo{}, err
		}
		v := k.info.LatestVersion + 1
		sealed, err := sv.newVersion(name, v)
		if err != nil {
			return KeyInfo{}, fmt.Errorf("transit: rotate: %w", err)
		}
		err = sv.st.AddTransitKeyVersion(ctx, name, v, sealed, sv.now())
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue // another replica rotated first; rotate on top of it
		}
		if err != nil {
			return KeyInfo{}, sv.storeErr("rotate", err)
		}
		return sv.Info(ctx, name)
	}
}

// SetMinDecryptionVersion retires the versions below min for decryption.
func (sv *Service) SetMinDecryptionVersion(ctx context.Context, name string, min int) (KeyInfo, error) {
	if !ValidName(name) {
		return KeyInfo{}, ErrBadName
	}
	if min < 1 {
		return KeyInfo{}, ErrBadMin
	}
	if err := sv.st.SetTransitMinDecryptionVersion(ctx, name, min, sv.now()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return KeyInfo{}, ErrBadMin
		}
		return KeyInfo{}, sv.storeErr("configure", err)
	}
	return sv.Info(ctx, name)
}

// Info describes key name, read fresh from the store.
func (sv *Service) Info(ctx context.Context, name string) (KeyInfo, error) {
	if !ValidName(name) {
		return KeyInfo{}, ErrBadName
	}
	k, err := sv.load(ctx, name, true)
	if err != nil {
		return KeyInfo{}, err
	}
	return k.info, nil
}

func (sv *Service) storeErr(op string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("transit: %s: %w", op, err)
}

// load returns the opened key, from the cache unless fresh or expired.
func (sv *Service) load(ctx context.Context, name string, fresh bool) (*openedKey, error) {
	now := sv.now()
	if !fresh {
		sv.mu.Lock()
		k := sv.cache[name]
		sv.mu.Unlock()
		if k != nil && now.Sub(k.loaded) < sv.ttl {
			return k, nil
		}
	}
	row, err := sv.st.TransitKey(ctx, name)
	if err != nil {
		return nil, sv.storeErr("load key", err)
	}
	k := &openedKey{loaded: now, versions: map[int]cipher.AEAD{}, info: KeyInfo{Name: row.Name,
		LatestVersion: row.LatestVersion, MinDecryptionVersion: row.MinDecryptionVersion, CreatedAt: row.CreatedAt}}
	sv.mu.Lock()
	prev := sv.cache[name]
	sv.mu.Unlock()
	for _, v := range row.Versions {
		k.info.Versions = append(k.info.Versions, VersionInfo{Version: v.Version, CreatedAt: v.CreatedAt})
		if prev != nil && prev.versions[v.Version] != nil {
			k.versions[v.Version] = prev.versions[v.Version] // versions never change
			continue
		}
		raw, err := sv.s.Open(purpose, v.Sealed, "transit_key_versions", "key", store.TransitKeyVersionID(name, v.Version))
		if err != nil {
			return nil, fmt.Errorf("transit: key %s version %d: %w", name, v.Version, err)
		}
		block, err := aes.NewCipher(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("transit: key %s version %d: %w", name, v.Version, err)
		}
		if k.versions[v.Version], err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	sv.mu.Lock()
	if len(sv.cache) >= maxCached {
		clear(sv.cache)
	}
	sv.cache[name] = k
	sv.mu.Unlock()
	return k, nil
}

// associatedData binds a ciphertext to its key name, version and the caller's
// context, each length-prefixed so no two combinations encode alike.
func associatedData(name string, version int, context []byte) []byte {
	b := make([]byte, 0, 32+len(name)+len(context))
	b = append(b, "gatehouse transit v1"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(context)))
	return append(b, context...)
}

// Encrypt seals plaintext under the latest version of key name, bound to context
// (optional; the same context is needed to decrypt).
func (sv *Service) Encrypt(ctx context.Context, name string, plaintext, context []byte) (string, error) {
	if !ValidName(name) {
		return "", ErrBadName
	}
	if len(plaintext) > MaxPlaintext || len(context) > MaxPlaintext {
		return "", ErrTooLarge
	}
	k, err := sv.load(ctx, name, false)
	if err != nil {
		return "", err
	}
	return encrypt(k, name, k.info.LatestVersion, plaintext, context), nil
}

func encrypt(k *openedKey, name string, v int, plaintext, context []byte) string {
	a := k.versions[v]
	body := make([]byte, 12, 12+len(plaintext)+16)
	rand.Read(body)
	body = a.Seal(body, body[:12], plaintext, associatedData(name, v, context))
	return Prefix + strconv.Itoa(v) + ":" + base64.StdEncoding.EncodeToString(body)
}

// ParseCiphertext splits "gh:v<version>:<base64>" into the version and the
// decoded body (nonce || sealed). It accepts nothing else: no signs, no leading
// zeros, no whitespace, no unpadded or URL-alphabet base64.
func ParseCiphertext(s string) (int, []byte, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return 0, nil, ErrBadCiphertext
	}
	vs, b64, ok := strings.Cut(rest, ":")
	if !ok || vs == "" || len(vs) > 10 || vs[0] == '0' {
		return 0, nil, ErrBadCiphertext
	}
	v := 0
	for _, c := range vs {
		if c < '0' || c > '9' {
			return 0, nil, ErrBadCiphertext
		}
		v = v*10 + int(c-'0')
	}
	if v > maxVersion || len(b64) > base64.StdEncoding.EncodedLen(MaxPlaintext+28) {
		return 0, nil, ErrBadCiphertext
	}
	body, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(body) < 12+16 {
		return 0, nil, ErrBadCiphertext
	}
	return v, body, nil
}

// Decrypt opens a ciphertext of key name with its context.
func (sv *Service) Decrypt(ctx context.Context, name, ciphertext string, context []byte) ([]byte, error) {
	pt, _, err := sv.decrypt(ctx, name, ciphertext, context)
	return pt, err
}

func (sv *Service) decrypt(ctx context.Context, name, ciphertext string, context []byte) ([]byte, *openedKey, error) {
	if !ValidName(name) {
		return nil, nil, ErrBadName
	}
	if len(context) > MaxPlaintext {
		return nil, nil, ErrTooLarge
	}
	v, body, err := ParseCiphertext(ciphertext)
	if err != nil {
		return nil, nil, err
	}
	k, err := sv.load(ctx, name, false)
	if err != nil {
		return nil, nil, err
	}
	if v > k.info.LatestVersion {
		// Maybe rotated through another replica since the cache was filled.
		if k, err = sv.load(ctx, name, true); err != nil {
			return nil, nil, err
		}
	}
	// Why checked before decrypting: a retired version may be retired because it
	// leaked; nothing sealed under it is to be trusted or revealed any more.
	if v < k.info.MinDecryptionVersion {
		return nil, nil, ErrRetired
	}
	a := k.versions[v]
	if a == nil {
		return nil, nil, ErrDecrypt
	}
	pt, err := a.Open(nil, body[:12], body[12:], associatedData(name, v, context))
	if err != nil {
		return nil, nil, ErrDecrypt
	}
	return pt, k, nil
}

// Rewrap decrypts a ciphertext and encrypts it again under the latest version,
// without the plaintext leaving the service.
func (sv *Service) Rewrap(ctx context.Context, name, ciphertext string, context []byte) (string, error) {
	pt, k, err := sv.decrypt(ctx, name, ciphertext, context)
	if err != nil {
		return "", err
	}
	defer clear(pt)
	return encrypt(k, name, k.info.LatestVersion, pt, context), nil
}
