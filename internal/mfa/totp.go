package mfa

import (
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// Params are a TOTP configuration. Enrolment always uses AppParams; the other
// algorithms and 8 digits exist for RFC 6238 conformance.
type Params struct {
	Algorithm otp.Algorithm // SHA1, SHA256 or SHA512
	Digits    otp.Digits    // 6 or 8
	Period    time.Duration // time step X; whole seconds
}

// AppParams is what authenticator apps (Google Authenticator, Microsoft
// Authenticator, 1Password, Authy) all support: SHA-1, 6 digits, 30 s. Several
// ignore the algorithm and digits parameters of an otpauth URI, so nothing else
// is offered.
var AppParams = Params{Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix, Period: 30 * time.Second}

// SecretSize is the size of a TOTP secret: 160 bits, the HMAC-SHA-1 output
// size that RFC 4226 §4 recommends.
const SecretSize = 20

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeSecret is the secret as authenticator apps take it (RFC 4648 base32,
// no padding).
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

func (p Params) valid() error {
	switch p.Algorithm {
	case otp.AlgorithmSHA1, otp.AlgorithmSHA256, otp.AlgorithmSHA512:
	default:
		return errors.New("unsupported algorithm")
	}
	if p.Digits != otp.DigitsSix && p.Digits != otp.DigitsEight {
		return errors.New("digits must be 6 or 8")
	}
	if p.Period < time.Second || p.Period%time.Second != 0 {
		return errors.New("period must be whole seconds")
	}
	return nil
}

// Step is the RFC 6238 time step T = floor((t - T0) / X) with T0 = 0.
func (p Params) Step(t time.Time) int64 {
	s := t.Unix()
	x := int64(p.Period / time.Second)
	if s < 0 {
		return (s - x + 1) / x
	}
	return s / x
}

// Code is the TOTP code for secret at step.
func Code(secret []byte, step int64, p Params) (string, error) {
	if err := p.valid(); err != nil {
		return "", fmt.Errorf("mfa: totp code: %w", err)
	}
	if len(secret) == 0 || step < 0 {
		return "", errors.New("mfa: totp code: empty secret or negative step")
	}
	c, err := hotp.GenerateCodeCustom(EncodeSecret(secret), uint64(step), hotp.ValidateOpts{Digits: p.Digits, Algorithm: p.Algorithm})
	if err != nil {
		return "", fmt.Errorf("mfa: totp code: %w", err)
	}
	return c, nil
}

// Match reports the time step at which code is secret's code, looking at the
// step of at and skew steps either side (the current step first, then nearest
// outwards, so a code that matches two steps resolves to the nearest). The
// caller must still refuse a step at or before the last one accepted.
//
// Every candidate is computed and compared in constant time, so the time taken
// does not tell which step matched or how much of a code was right.
func Match(secret []byte, code string, at time.Time, skew int, p Params) (step int64, ok bool, err error) {
	if err := p.valid(); err != nil {
		return 0, false, fmt.Errorf("mfa: totp match: %w", err)
	}
	if len(code) != p.Digits.Length() || !digits(code) {
		return 0, false, nil
	}
	now := p.Step(at)
	found := false
	for _, d := range offsets(skew) {
		s := now + int64(d)
		if s < 0 {
			continue
		}
		want, err := Code(secret, s, p)
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			step, found = s, true
		}
	}
	return step, found, nil
}

// offsets are 0, -1, +1, -2, +2, … up to skew.
func offsets(skew int) []int {
	out := []int{0}
	for i := 1; i <= skew; i++ {
		out = append(out, -i, i)
	}
	return out
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
