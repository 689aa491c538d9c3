package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrOpen means a sealed value did not open: it was tampered with, truncated, sealed
// under another KEK, or bound to another purpose, table, column or row. Which one is
// deliberately not said.
var ErrOpen = errors.New("sealed value does not open")

// Ciphertext layout, version 1:
//
//	0x01 | KEK id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag (16 bytes)
//
// The version byte leaves room for the envelope (DEK) format. The header is part of
// the associated data, so neither the version nor the KEK id can be altered.
const (
	sealVersion1  = 0x01
	sealIDSize    = 8
	sealNonceSize = 12
	sealTagSize   = 16
	sealHeader    = 1 + sealIDSize + sealNonceSize
	// SealOverhead is how many bytes Seal adds to a plaintext.
	SealOverhead = sealHeader + sealTagSize
)

// hkdfSalt separates Gatehouse's derivations from any other use of the same
// secret. Changing it changes every subkey.
var hkdfSalt = []byte("gatehouse kek v1")

// maxCachedPurposes bounds the per-purpose subkey cache. Purposes are code
// constants in practice; the bound only stops a caller that passes unbounded
// purposes from growing memory (beyond it subkeys are derived per call).
const maxCachedPurposes = 256

// Sealer encrypts values at rest under per-purpose subkeys of a KEK. It is safe for
// concurrent use.
type Sealer struct {
	kek     *KEK
	aeads   sync.Map // purpose → cipher.AEAD
	indexes sync.Map // purpose → []byte (HMAC key)
	cached  atomic.Int32
}

// NewSealer returns a Sealer using k.
func NewSealer(k *KEK) *Sealer { return &Sealer{kek: k} }

// KEKID is the ID of the KEK this Sealer seals under.
func (s *Sealer) KEKID() string { return s.kek.ID() }

// Explain says, for diagnostics, why sealed may not open under this Sealer: it
// names the KEK the value claims to be sealed under when that is another one.
func (s *Sealer) Explain(sealed []byte) string {
	if id, ok := SealedKEKID(sealed); ok && id != s.KEKID() {
		return fmt.Sprintf("it was sealed under kek %s, this kek is %s", id, s.KEKID())
	}
	return ""
}

// SealedKEKID reports the ID of the KEK a sealed value claims to be sealed under,
// for diagnostics ("sealed under kek X, this is kek Y"). It is not authenticated
// until the value opens.
func SealedKEKID(sealed []byte) (string, bool) {
	if len(sealed) < SealOverhead || sealed[0] != sealVersion1 {
		return "", false
	}
	return hex.EncodeToString(sealed[1 : 1+sealIDSize]), true
}

func (s *Sealer) derive(info string) []byte {
	// HKDF-SHA256 with a fixed salt; info names the use ("seal "/"index " +
	// purpose) so that each purpose, and sealing vs indexing, get independent keys:
	// a key compromised through one use says nothing about another.
	k, err := hkdf.Key(sha256.New, s.kek.key[:], hkdfSalt, info, 32)
	if err != nil {
		// Only possible for an output length beyond 255*32 bytes.
		panic("keys: hkdf: " + err.Error())
	}
	return k
}

func (s *Sealer) aead(purpose string) cipher.AEAD {
	if a, ok := s.aeads.Load(purpose); ok {
		return a.(cipher.AEAD)
	}
	key := s.derive("seal " + purpose)
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		panic("keys: aes: " + err.Error()) // 32-byte key: cannot happen
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		panic("keys: gcm: " + err.Error()) // standard nonce and tag size: cannot happen
	}
	if s.cached.Add(1) <= maxCachedPurposes {
		s.aeads.Store(purpose, a)
	}
	return a
}

func (s *Sealer) indexKey(purpose string) []byte {
	if k, ok := s.indexes.Load(purpose); ok {
		return k.([]byte)
	}
	k := s.derive("index " + purpose)
	if s.cached.Add(1) <= maxCachedPurposes {
		s.indexes.Store(purpose, k)
	}
	return k
}

// associatedData encodes header, purpose and aad unambiguously: each element is
// length-prefixed, so ("ab","c") and ("a","bc") differ, and so do ("a") and
// ("a","").
//
// Why: callers bind each value to its table, column and row id. A ciphertext copied
// by someone with write access to the store into another row, another column, or
// another purpose then fails to open instead of being silently accepted.
func associatedData(header []byte, purpose string, aad []string) []byte {
	n := len(header) + 4 + len(purpose)
	for _, a := range aad {
		n += 4 + len(a)
	}
	b := make([]byte, 0, n)
	b = append(b, header...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(purpose)))
	b = append(b, purpose...)
	for _, a := range aad {
		b = binary.BigEndian.AppendUint32(b, uint32(len(a)))
		b = append(b, a...)
	}
	return b
}

// Seal encrypts plaintext for purpose, bound to aad (conventionally table, column,
// row id). The result opens only with the same KEK, purpose and aad.
func (s *Sealer) Seal(purpose string, plaintext []byte, aad ...string) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("keys: seal: empty purpose")
	}
	out := make([]byte, sealHeader, sealHeader+len(plaintext)+sealTagSize)
	out[0] = sealVersion1
	copy(out[1:], s.kek.id[:])
	// Random 96-bit nonces: safe for well under 2^32 seals per (KEK, purpose);
	// the envelope work moves bulk data to DEKs that rotate long before that.
	rand.Read(out[1+sealIDSize : sealHeader])
	ad := associatedData(out[:1+sealIDSize], purpose, aad)
	return s.aead(purpose).Seal(out, out[1+sealIDSize:sealHeader], plaintext, ad), nil
}

// Open decrypts a value made by Seal with the same purpose and aad. Every failure
// is ErrOpen (wrapped), whatever the cause.
func (s *Sealer) Open(purpose string, sealed []byte, aad ...string) ([]byte, error) {
	if purpose == "" || len(sealed) < SealOverhead || sealed[0] != sealVersion1 {
		return nil, openError(purpose)
	}
	// Not a secret comparison: the id is public. Checking it first spares the GCM
	// work for values sealed under another KEK.
	if string(sealed[1:1+sealIDSize]) != string(s.kek.id[:]) {
		return nil, openError(purpose)
	}
	ad := associatedData(sealed[:1+sealIDSize], purpose, aad)
	pt, err := s.aead(purpose).Open(nil, sealed[1+sealIDSize:sealHeader], sealed[sealHeader:], ad)
	if err != nil {
		return nil, openError(purpose)
	}
	return pt, nil
}

func openError(purpose string) error { return fmt.Errorf("keys: open %s: %w", purpose, ErrOpen) }

// Index returns a keyed blind index of value for purpose: HMAC-SHA256 under a
// subkey of its own, 32 bytes. Equal inputs give equal indexes (so the store can
// look up and enforce uniqueness) but without the KEK the index reveals nothing,
// not even to a dictionary attack. Callers normalise value first (e.g. lower-case
// an email address).
func (s *Sealer) Index(purpose string, value []byte) []byte {
	m := hmac.New(sha256.New, s.indexKey(purpose))
	m.Write(value)
	return m.Sum(nil)
}
