package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// ErrBusy is returned when no hashing slot frees up within the Hasher's
// QueueTimeout. The HTTP layer answers 503 with Retry-After.
var ErrBusy = errors.New("no password hashing slot free")

// defaultQueueTimeout is HasherOptions.QueueTimeout's zero value.
const defaultQueueTimeout = 2 * time.Second

// HasherOptions tunes a Hasher. The zero value is ready to use.
type HasherOptions struct {
	// MaxConcurrent is how many argon2id computations may run at once across
	// Hash, Verify and VerifyDummy. Zero means runtime.NumCPU(); negative is an
	// error.
	MaxConcurrent int
	// QueueTimeout is how long a call waits for a free slot before it returns
	// ErrBusy. Zero means 2s; negative is an error.
	QueueTimeout time.Duration
}

// kdfFunc computes an argon2id key; tests replace it to observe concurrency.
type kdfFunc func(password, salt []byte, p Params, keyLen uint32) []byte

func argon2idKDF(password, salt []byte, p Params, keyLen uint32) []byte {
	return argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
}

// Hasher hashes and verifies passwords with argon2id under a concurrency cap.
// It is safe for concurrent use.
type Hasher struct {
	params       Params
	queueTimeout time.Duration
	// slots is a counting semaphore: a send takes a slot, a receive frees it.
	//
	// Why: argon2id is deliberately expensive (tens of ms of CPU and ~19 MiB
	// each). Without a cap, a login flood would run hundreds at once, exhaust
	// memory and starve the proxied traffic that shares this process of CPU.
	// With it, excess logins wait briefly and then get ErrBusy (HTTP 503).
	slots chan struct{}
	kdf   kdfFunc
	// onWait, when set (tests only), runs when a caller finds no free slot and
	// starts to wait.
	onWait func()

	// dummySalt and dummyKey give VerifyDummy a real comparison to make. They
	// are random per Hasher and protect nothing.
	dummySalt []byte
	dummyKey  []byte
}

// NewHasher returns a Hasher that writes hashes with p. It fails if p does not
// pass Validate or opts holds negative values.
func NewHasher(p Params, opts HasherOptions) (*Hasher, error) {
	if err := p.problems(); err != nil {
		return nil, fmt.Errorf("password: new hasher: %w", err)
	}
	if opts.MaxConcurrent < 0 {
		return nil, fmt.Errorf("password: new hasher: max concurrent %d is negative", opts.MaxConcurrent)
	}
	if opts.QueueTimeout < 0 {
		return nil, fmt.Errorf("password: new hasher: queue timeout %s is negative", opts.QueueTimeout)
	}
	n := opts.MaxConcurrent
	if n == 0 {
		n = runtime.NumCPU()
	}
	qt := opts.QueueTimeout
	if qt == 0 {
		qt = defaultQueueTimeout
	}
	h := &Hasher{
		params:       p,
		queueTimeout: qt,
		slots:        make(chan struct{}, n),
		kdf:          argon2idKDF,
		dummySalt:    make([]byte, SaltLen),
		dummyKey:     make([]byte, KeyLen),
	}
	if _, err := rand.Read(h.dummySalt); err != nil {
		return nil, fmt.Errorf("password: new hasher: %w", err)
	}
	if _, err := rand.Read(h.dummyKey); err != nil {
		return nil, fmt.Errorf("password: new hasher: %w", err)
	}
	return h, nil
}

// Params returns the cost h writes new hashes with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under h's Params with a fresh random
// salt. Pass Normalize(password). It returns ErrBusy when no slot frees up in
// time, or ctx's error when ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	key, err := h.compute(ctx, []byte(password), salt, h.params, KeyLen)
	if err != nil {
		return "", fmt.Errorf("password: hash: %w", err)
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password matches the stored PHC string encoded. The
// comparison is constant-time. needsRehash is true when the password matched
// and encoded was made with a cost (or salt/key length) other than h's: the
// caller should then store a fresh Hash. A malformed encoded is
// ErrMalformedHash; ErrBusy and ctx errors are as for Hash. For an account that
// does not exist (or has no password), call VerifyDummy instead so the response
// takes as long.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	p, salt, want, err := ParsePHC(encoded)
	if err != nil {
		return false, false, err // already "password: parse phc: ..."
	}
	got, err := h.compute(ctx, []byte(password), salt, p, uint32(len(want)))
	if err != nil {
		return false, false, fmt.Errorf("password: verify: %w", err)
	}
	// Why constant-time: a byte-by-byte early exit would leak, through timing,
	// how much of a guessed key matches.
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params || len(salt) != SaltLen || len(want) != KeyLen, nil
}

// VerifyDummy spends what a Verify against a hash with h's Params spends and
// then reports nothing. Call it when the account is unknown, so that login
// time does not tell an attacker which accounts exist. It returns only ErrBusy
// or ctx's error.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	got, err := h.compute(ctx, []byte(password), h.dummySalt, h.params, KeyLen)
	if err != nil {
		return fmt.Errorf("password: verify dummy: %w", err)
	}
	// Same comparison as Verify; its result is meaningless and dropped.
	subtle.ConstantTimeCompare(got, h.dummyKey)
	return nil
}

// compute runs one argon2id computation inside a slot.
func (h *Hasher) compute(ctx context.Context, password, salt []byte, p Params, keyLen uint32) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return h.kdf(password, salt, p, keyLen), nil
}

// acquire takes a slot, waiting at most h.queueTimeout or until ctx ends.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.onWait != nil {
		h.onWait()
	}
	timer := time.NewTimer(h.queueTimeout)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return ErrBusy
	}
}

// release frees a slot taken by acquire.
func (h *Hasher) release() { <-h.slots }
