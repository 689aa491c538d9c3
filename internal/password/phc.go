package password

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformedHash is returned when a stored hash is not a PHC string that this
// package accepts (wrong variant or version, missing parts, bad base64, or a cost
// outside the bounds).
var ErrMalformedHash = errors.New("malformed password hash")

// Bounds on what ParsePHC accepts besides the Params ceilings. Salt and key may
// differ from SaltLen and KeyLen so that hashes made by other argon2id tools
// (same format, other lengths) still verify and are then rehashed; both stay
// bounded so a stored hash cannot ask for an oversized key.
const (
	minParsedSaltLen = 8 // RFC 9106 minimum
	maxParsedSaltLen = 64
	minParsedKeyLen  = 16
	maxParsedKeyLen  = 64

	// maxPHCLen is longer than any string within the bounds above (about 220
	// bytes); longer input is rejected before any splitting or decoding.
	maxPHCLen = 256

	phcPrefix = "$argon2id$v=19$"
)

// phcEncoding is the reference implementation's base64: standard alphabet, no
// padding. Strict rejects non-zero trailing bits so each value has one encoding.
var phcEncoding = base64.RawStdEncoding.Strict()

// ParsePHC parses an argon2id PHC string of the exact form
//
//	$argon2id$v=19$m=<KiB>,t=<iterations>,p=<lanes>$<salt>$<key>
//
// with salt and key in unpadded standard base64, as the reference implementation
// writes them. Anything else — argon2i/argon2d, version 16, parameters in another
// order or with extra keys, leading zeros, padding, line breaks, costs above the
// ceilings — is ErrMalformedHash. Costs below the OWASP floor are accepted (old
// hashes must still verify, and then get rehashed); costs above the ceilings are
// not, because the stored string decides how much memory Verify allocates.
// Errors never include the input.
func ParsePHC(s string) (p Params, salt, key []byte, err error) {
	fail := func(what string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("password: parse phc: %s: %w", what, ErrMalformedHash)
	}
	if len(s) > maxPHCLen {
		return fail("too long")
	}
	if !strings.HasPrefix(s, "$argon2") {
		return fail("not an argon2 hash")
	}
	if !strings.HasPrefix(s, "$argon2id$") {
		return fail("unsupported variant (only argon2id)")
	}
	if !strings.HasPrefix(s, phcPrefix) {
		return fail("unsupported version (only v=19)")
	}
	parts := strings.Split(s[len(phcPrefix):], "$")
	if len(parts) != 3 {
		return fail("want parameters, salt and key")
	}

	kv := strings.Split(parts[0], ",")
	if len(kv) != 3 {
		return fail("want exactly m, t and p")
	}
	m, ok := parseParam(kv[0], "m=")
	if !ok {
		return fail("bad m")
	}
	t, ok := parseParam(kv[1], "t=")
	if !ok {
		return fail("bad t")
	}
	par, ok := parseParam(kv[2], "p=")
	if !ok {
		return fail("bad p")
	}
	if par < 1 || par > MaxParallelism {
		return fail("p out of range")
	}
	if t < 1 || t > MaxIterations {
		return fail("t out of range")
	}
	// argon2 needs at least 8 KiB per lane.
	if m < 8*par || m > MaxMemoryKiB {
		return fail("m out of range")
	}

	salt, ok = decodeB64(parts[1], minParsedSaltLen, maxParsedSaltLen)
	if !ok {
		return fail("bad salt")
	}
	key, ok = decodeB64(parts[2], minParsedKeyLen, maxParsedKeyLen)
	if !ok {
		return fail("bad key")
	}
	return Params{MemoryKiB: m, Iterations: t, Parallelism: uint8(par)}, salt, key, nil
}

// parseParam reads "<name><decimal>" with no sign, no leading zeros and no more
// than 10 digits, as a uint32.
func parseParam(s, name string) (uint32, bool) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || len(digits) > 10 {
		return 0, false
	}
	if digits[0] == '0' && len(digits) > 1 {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// decodeB64 decodes unpadded standard base64 whose decoded length is within
// [minLen, maxLen]. It checks the alphabet itself because encoding/base64
// silently skips '\r' and '\n', which would give one hash many spellings.
func decodeB64(s string, minLen, maxLen int) ([]byte, bool) {
	if s == "" || len(s) > phcEncoding.EncodedLen(maxLen) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, false
		}
	}
	b, err := phcEncoding.DecodeString(s)
	if err != nil || len(b) < minLen || len(b) > maxLen {
		return nil, false
	}
	return b, true
}

// encodePHC writes the PHC string for an argon2id hash; ParsePHC(encodePHC(...))
// returns the same values.
func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		phcEncoding.EncodeToString(salt), phcEncoding.EncodeToString(key))
}
