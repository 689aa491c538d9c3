package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// ErrUnwrap means a wrapped data key did not unwrap: it was wrapped by another KEK,
// for another key id or purpose, or altered. Which one is deliberately not said.
var ErrUnwrap = errors.New("wrapped data key does not unwrap")

// Wrapper is a key-encryption key as the envelope layer uses it: it wraps and
// unwraps data keys, binding each to associated data (the data key's id and
// purpose), and has a stable public ID. *KEK (file://, env://) and the KMS KEKs
// opened by OpenKEK implement it.
type Wrapper interface {
	// ID is a short, non-secret fingerprint of the KEK, recorded next to every key
	// it wraps so that "wrapped by another KEK" can be told apart from tampering.
	ID() string
	// Wrap encrypts key bound to aad.
	Wrap(ctx context.Context, key []byte, aad ...string) ([]byte, error)
	// Unwrap reverses Wrap with the same aad; every failure wraps ErrUnwrap.
	Unwrap(ctx context.Context, wrapped []byte, aad ...string) ([]byte, error)
	// Close releases the KEK (a KMS connection); a local KEK has nothing to release.
	Close() error
}

var _ Wrapper = (*KEK)(nil)

// Local wrapping format, version 1: 0x01 | nonce (12) | AES-256-GCM(key) + tag.
const (
	wrapVersion1 = 0x01
	wrapHeader   = 1 + sealNonceSize
)

// wrapInfo is the HKDF info of the wrapping subkey. It differs from every
// "seal "/"index " info, so no sealing or indexing key ever wraps a data key.
const wrapInfo = "wrap data key"

func (k *KEK) wrapAEAD() cipher.AEAD {
	key := (&Sealer{kek: k}).derive(wrapInfo)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("keys: aes: " + err.Error()) // 32-byte key: cannot happen
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic("keys: gcm: " + err.Error())
	}
	return a
}

// Wrap encrypts a data key under a subkey of k reserved for wrapping, bound to aad.
func (k *KEK) Wrap(_ context.Context, key []byte, aad ...string) ([]byte, error) {
	out := make([]byte, wrapHeader, wrapHeader+len(key)+sealTagSize)
	out[0] = wrapVersion1
	rand.Read(out[1:wrapHeader])
	return k.wrapAEAD().Seal(out, out[1:wrapHeader], key, associatedData(out[:1], "wrap", aad)), nil
}

// Unwrap decrypts a key made by Wrap with the same KEK and aad.
func (k *KEK) Unwrap(_ context.Context, wrapped []byte, aad ...string) ([]byte, error) {
	if len(wrapped) < wrapHeader+sealTagSize || wrapped[0] != wrapVersion1 {
		return nil, fmt.Errorf("keys: unwrap: %w", ErrUnwrap)
	}
	pt, err := k.wrapAEAD().Open(nil, wrapped[1:wrapHeader], wrapped[wrapHeader:], associatedData(wrapped[:1], "wrap", aad))
	if err != nil {
		return nil, fmt.Errorf("keys: unwrap: %w", ErrUnwrap)
	}
	return pt, nil
}

// Close does nothing: a local KEK holds no connection.
func (k *KEK) Close() error { return nil }

// DeriveLegacyIndexKey returns the blind-index key that Sealer.Index uses for
// purpose (the version-1, KEK-derived index). The envelope layer adopts it as the
// value of the purpose's first index data key, so blind indexes written before
// envelope encryption keep matching — and keep matching after the KEK rotates,
// because from then on the key lives wrapped in the store, not derived.
func (k *KEK) DeriveLegacyIndexKey(purpose string) []byte {
	return (&Sealer{kek: k}).derive("index " + purpose)
}

// AssociatedData is the unambiguous, length-prefixed encoding of header, purpose
// and aad that Sealer binds to every ciphertext; the envelope format uses the same
// encoding so that both versions bind values to their table, column and row alike.
func AssociatedData(header []byte, purpose string, aad []string) []byte {
	return associatedData(header, purpose, aad)
}
