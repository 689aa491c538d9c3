package password

import (
	"context"
	"errors"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestHasher(t *testing.T, p Params, opts HasherOptions) *Hasher {
	t.Helper()
	h, err := NewHasher(p, opts)
	if err != nil {
		t.Fatalf("NewHasher(%+v, %+v) error = %v", p, opts, err)
	}
	return h
}

func TestNewHasherRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		opts HasherOptions
	}{
		{"zero params", Params{}, HasherOptions{}},
		{"below floor", Params{MemoryKiB: 4096, Iterations: 1, Parallelism: 1}, HasherOptions{}},
		{"memory above ceiling", Params{MemoryKiB: 4 << 20, Iterations: 2, Parallelism: 1}, HasherOptions{}},
		{"negative max concurrent", DefaultParams(), HasherOptions{MaxConcurrent: -1}},
		{"negative queue timeout", DefaultParams(), HasherOptions{QueueTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHasher(tt.p, tt.opts)
			if err == nil || h != nil {
				t.Fatalf("NewHasher() = %v, %v; want nil and an error", h, err)
			}
			if !strings.HasPrefix(err.Error(), "password: new hasher: ") {
				t.Errorf("error %q lacks the operation prefix", err)
			}
		})
	}
}

func TestNewHasherDefaults(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	if got, want := cap(h.slots), runtime.NumCPU(); got != want {
		t.Errorf("slots = %d, want runtime.NumCPU() = %d", got, want)
	}
	if h.queueTimeout != 2*time.Second {
		t.Errorf("queue timeout = %s, want 2s", h.queueTimeout)
	}
	if h.Params() != DefaultParams() {
		t.Errorf("Params() = %+v, want %+v", h.Params(), DefaultParams())
	}
	h = newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: 3, QueueTimeout: time.Minute})
	if cap(h.slots) != 3 || h.queueTimeout != time.Minute {
		t.Errorf("options not applied: slots %d, timeout %s", cap(h.slots), h.queueTimeout)
	}
}

var phcPattern = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	for _, pw := range []string{"correct horse battery staple", "pässwörd 🔑 with spaces", ""} {
		encoded, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatalf("Hash(%q) error = %v", pw, err)
		}
		if !phcPattern.MatchString(encoded) {
			t.Fatalf("Hash(%q) = %q, not a PHC string with 16-byte salt and 32-byte key", pw, encoded)
		}
		ok, rehash, err := h.Verify(ctx, pw, encoded)
		if err != nil || !ok || rehash {
			t.Fatalf("Verify(right password) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, rehash, err = h.Verify(ctx, pw+"x", encoded)
		if err != nil || ok || rehash {
			t.Fatalf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	a, err := h.Hash(ctx, "same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(ctx, "same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of one password are equal: %q", a)
	}
}

func TestVerifyReferenceVectors(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	for _, v := range referenceVectors {
		t.Run(v.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(ctx, v.password, v.encoded)
			if err != nil || !ok {
				t.Fatalf("Verify() = %v, %v, %v; want a match", ok, rehash, err)
			}
			// Only a hash with exactly our params, salt and key length is current.
			wantRehash := v.params != DefaultParams() || len(v.salt) != SaltLen || v.keyLen != KeyLen
			if rehash != wantRehash {
				t.Errorf("needsRehash = %v, want %v", rehash, wantRehash)
			}
			ok, _, err = h.Verify(ctx, strings.ToUpper(v.password), v.encoded)
			if err != nil || ok {
				t.Errorf("Verify(other password) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	const pw = "correct horse battery staple"
	encoded := referenceVectors[0].encoded
	i := strings.LastIndexByte(encoded, '$')
	key := encoded[i+1:]
	flip := func(s string, at int) string {
		c := byte('A')
		if s[at] == 'A' {
			c = 'B'
		}
		return s[:at] + string(c) + s[at+1:]
	}
	tests := []struct {
		name, encoded string
	}{
		// Each still parses, so only the constant-time comparison can catch it.
		{"key first char", encoded[:i+1] + flip(key, 0)},
		{"key middle char", encoded[:i+1] + flip(key, 20)},
		{"salt changed", strings.Replace(encoded, "Z2F0ZWhvdXNlLXNhbHQxNg", "Z2F0ZWhvdXNlLXNhbHQxNw", 1)},
		{"memory changed", strings.Replace(encoded, "m=19456", "m=19457", 1)},
		{"iterations changed", strings.Replace(encoded, "t=2", "t=3", 1)},
		{"key truncated to 16 bytes", encoded[:i+1] + phcEncoding.EncodeToString(mustDecode(t, key)[:16])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.encoded == encoded {
				t.Fatal("tampering did not change the string")
			}
			ok, rehash, err := h.Verify(ctx, pw, tt.encoded)
			if err != nil || ok || rehash {
				t.Fatalf("Verify() = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := phcEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyMalformed(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	// No argon2 runs for these, so a fake KDF proves none was attempted.
	h.kdf = func([]byte, []byte, Params, uint32) []byte {
		t.Fatal("KDF called for a malformed hash")
		return nil
	}
	for _, encoded := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8pDKuQWnVyn1WubqZygCiwFvgGZldOecJANYh9ZnKbA",
		"$argon2id$v=19$m=4294967295,t=2,p=1$Z2F0ZWhvdXNlLXNhbHQxNg$bsXFENIwjcWvJE0fNSKGJUdiUsIMdeBM0ApgamQdnew",
		"plaintext-password",
	} {
		ok, rehash, err := h.Verify(ctx, "whatever", encoded)
		if !errors.Is(err, ErrMalformedHash) || ok || rehash {
			t.Errorf("Verify(%q) = %v, %v, %v; want false, false, ErrMalformedHash", encoded, ok, rehash, err)
		}
	}
}

func TestVerifyNeedsRehashWhenParamsChange(t *testing.T) {
	ctx := context.Background()
	old := newTestHasher(t, DefaultParams(), HasherOptions{})
	stronger := newTestHasher(t, Params{MemoryKiB: 19456, Iterations: 3, Parallelism: 1}, HasherOptions{})
	const pw = "a long and unusual passphrase"
	encoded, err := old.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	ok, rehash, err := stronger.Verify(ctx, pw, encoded)
	if err != nil || !ok || !rehash {
		t.Fatalf("stronger.Verify(old hash) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	// A wrong password never asks for a rehash.
	ok, rehash, err = stronger.Verify(ctx, pw+"!", encoded)
	if err != nil || ok || rehash {
		t.Fatalf("stronger.Verify(wrong, old hash) = %v, %v, %v; want false, false, nil", ok, rehash, err)
	}
	// The rehashed value is current for the stronger hasher.
	fresh, err := stronger.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fresh, "$argon2id$v=19$m=19456,t=3,p=1$") {
		t.Fatalf("stronger.Hash() = %q, want t=3", fresh)
	}
	if ok, rehash, err := stronger.Verify(ctx, pw, fresh); err != nil || !ok || rehash {
		t.Fatalf("stronger.Verify(fresh) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), HasherOptions{})
	var calls []Params
	real := h.kdf
	h.kdf = func(pw, salt []byte, p Params, keyLen uint32) []byte {
		calls = append(calls, p)
		if len(salt) != SaltLen || keyLen != KeyLen {
			t.Errorf("dummy salt %d / key %d bytes, want the sizes a real hash has", len(salt), keyLen)
		}
		return real(pw, salt, p, keyLen)
	}
	if err := h.VerifyDummy(context.Background(), "anything"); err != nil {
		t.Fatalf("VerifyDummy() = %v", err)
	}
	// Same work as a real Verify against a current hash: one argon2id at h's cost.
	if len(calls) != 1 || calls[0] != h.Params() {
		t.Fatalf("VerifyDummy ran argon2id with %+v, want exactly once with %+v", calls, h.Params())
	}
}

// holdAllSlots takes every slot of h and returns a func that frees them.
func holdAllSlots(t *testing.T, h *Hasher) func() {
	t.Helper()
	for range cap(h.slots) {
		if err := h.acquire(context.Background()); err != nil {
			t.Fatalf("acquire() = %v while slots are free", err)
		}
	}
	return func() {
		for range cap(h.slots) {
			h.release()
		}
	}
}

func TestErrBusyWhenSlotsHeld(t *testing.T) {
	ctx := context.Background()
	h := newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: 2, QueueTimeout: time.Millisecond})
	h.kdf = func([]byte, []byte, Params, uint32) []byte {
		t.Error("KDF ran although every slot was held")
		return make([]byte, KeyLen)
	}
	releaseAll := holdAllSlots(t, h)

	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash() error = %v, want ErrBusy", err)
	}
	if ok, _, err := h.Verify(ctx, "pw", referenceVectors[0].encoded); !errors.Is(err, ErrBusy) || ok {
		t.Errorf("Verify() = %v, %v; want false, ErrBusy", ok, err)
	}
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy() error = %v, want ErrBusy", err)
	}

	// Once the slots are free, work goes through again.
	releaseAll()
	h.kdf = argon2idKDF
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatalf("Hash() after release = %v", err)
	}
}

func TestContextCanceledWhileWaiting(t *testing.T) {
	// A queue timeout far beyond the test's life: only ctx can end the wait.
	h := newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: 1, QueueTimeout: time.Hour})
	waiting := make(chan struct{})
	h.onWait = func() { close(waiting) }
	defer holdAllSlots(t, h)()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "pw")
		errc <- err
	}()
	<-waiting // the caller found no slot and is now blocked
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, ErrBusy) {
		t.Fatalf("Hash() error = %v, want context.Canceled", err)
	}
}

func TestContextDeadlineWhileWaiting(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: 1, QueueTimeout: time.Hour})
	defer holdAllSlots(t, h)()
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("VerifyDummy() error = %v, want context.DeadlineExceeded", err)
	}
}

func TestContextAlreadyDone(t *testing.T) {
	h := newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: 1})
	h.kdf = func([]byte, []byte, Params, uint32) []byte {
		t.Error("KDF ran for a canceled context")
		return make([]byte, KeyLen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Slots are free, yet nothing runs for a caller that has gone away.
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash() error = %v, want context.Canceled", err)
	}
	if _, _, err := h.Verify(ctx, "pw", referenceVectors[0].encoded); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify() error = %v, want context.Canceled", err)
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots leaked", len(h.slots))
	}
}

func TestConcurrencyCap(t *testing.T) {
	const (
		limit   = 2
		callers = 7
	)
	h := newTestHasher(t, DefaultParams(), HasherOptions{MaxConcurrent: limit, QueueTimeout: time.Hour})

	var inFlight, peak atomic.Int32
	entered := make(chan struct{}, callers)
	proceed := make(chan struct{})
	h.kdf = func([]byte, []byte, Params, uint32) []byte {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		<-proceed
		inFlight.Add(-1)
		return make([]byte, KeyLen)
	}
	waiters := make(chan struct{}, callers)
	h.onWait = func() { waiters <- struct{}{} }

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := h.Hash(context.Background(), "pw")
			errs <- err
		})
	}
	// limit callers are computing, the rest found no slot and wait.
	for range limit {
		<-entered
	}
	for range callers - limit {
		<-waiters
	}
	if got := inFlight.Load(); got != limit {
		t.Fatalf("%d computations in flight, want %d", got, limit)
	}
	// Let them finish one at a time; each frees a slot for a waiter.
	for range callers {
		proceed <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Hash() error = %v", err)
		}
	}
	if got := peak.Load(); got > limit {
		t.Fatalf("peak of %d concurrent computations, cap is %d", got, limit)
	}
	if len(h.slots) != 0 {
		t.Fatalf("%d slots still held after all callers returned", len(h.slots))
	}
}
