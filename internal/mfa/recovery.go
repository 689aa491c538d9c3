package mfa

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
)

// RecoveryCodeCount is how many recovery codes an enrolment gets.
const RecoveryCodeCount = 10

// recoveryBytes is a recovery code's entropy: 80 bits, 16 base32 characters.
// Unlike a TOTP code, a recovery code is usable for as long as it lives, so it
// must resist guessing on its own even with throttling.
const recoveryBytes = 10

var lowerB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrMalformedRecoveryCode: the input cannot be a recovery code.
var ErrMalformedRecoveryCode = errors.New("not a recovery code")

// newRecoveryCodes returns n codes shaped "xxxx-xxxx-xxxx-xxxx".
func newRecoveryCodes(r io.Reader, n int) ([]string, error) {
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for len(out) < n {
		b := make([]byte, recoveryBytes)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("mfa: recovery codes: %w", err)
		}
		s := lowerB32.EncodeToString(b)
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s[0:4]+"-"+s[4:8]+"-"+s[8:12]+"-"+s[12:16])
	}
	return out, nil
}

// NormalizeRecoveryCode accepts a code as people type it: any case, with or
// without hyphens and spaces, and with 0 and 1 for the letters o and l (the
// alphabet has no 0 or 1). It returns the 16 canonical characters.
func NormalizeRecoveryCode(s string) (string, error) {
	if len(s) > 64 {
		return "", ErrMalformedRecoveryCode
	}
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c == '-' || c == ' ':
		case c == '0':
			b.WriteByte('o')
		case c == '1':
			b.WriteByte('l')
		case c >= 'a' && c <= 'z', c >= '2' && c <= '7':
			b.WriteRune(c)
		default:
			return "", ErrMalformedRecoveryCode
		}
	}
	if b.Len() != 16 {
		return "", ErrMalformedRecoveryCode
	}
	return b.String(), nil
}

// hashRecoveryCode is what the store keeps: SHA-256 over the user id and the
// canonical code. 80 random bits need no slow hash; the user id keeps equal
// codes of two users apart.
func hashRecoveryCode(userID, canonical string) []byte {
	h := sha256.New()
	h.Write([]byte("gatehouse recovery code\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(canonical))
	return h.Sum(nil)
}
