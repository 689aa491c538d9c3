package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// kekSize is the length of a KEK in bytes (an AES-256 key's worth of entropy).
const kekSize = 32

// maxKEKFile bounds how much of a KEK file is read; a real one is at most 45 bytes.
const maxKEKFile = 4096

// kekMask is what a KEK prints as, whatever the verb.
const kekMask = "KEK(REDACTED)"

// KEK is the key-encryption key: 32 secret bytes from which every sealing and
// indexing subkey is derived. It never leaves this package: no method returns its
// bytes, and every way of printing or logging it yields a fixed mask.
type KEK struct {
	key [kekSize]byte
	id  [8]byte // first 8 bytes of HMAC(key, "gatehouse kek id"); not secret
}

func newKEK(raw []byte) *KEK {
	k := &KEK{}
	copy(k.key[:], raw)
	m := hmac.New(sha256.New, k.key[:])
	m.Write([]byte("gatehouse kek id"))
	copy(k.id[:], m.Sum(nil))
	return k
}

// ID is a short stable fingerprint of the KEK (16 hex characters). It is a one-way
// function of the key, so it is safe to log and to show operators; sealed values
// carry it so that "sealed under another KEK" can be told apart from tampering.
func (k *KEK) ID() string { return hex.EncodeToString(k.id[:]) }

// String returns a mask; the key bytes are never printed.
func (k KEK) String() string { return kekMask }

// GoString returns a mask, so %#v does not dump the array either.
func (k KEK) GoString() string { return kekMask }

// Format prints the mask for every verb (%x, %q, %d included): fmt would otherwise
// render the unexported array for verbs that bypass String.
func (k KEK) Format(f fmt.State, _ rune) { io.WriteString(f, kekMask) }

// LogValue keeps the key out of structured logs.
func (k KEK) LogValue() slog.Value { return slog.StringValue(kekMask) }

// MarshalText refuses, so a KEK cannot end up in JSON, YAML or a config dump.
func (k KEK) MarshalText() ([]byte, error) {
	return nil, errors.New("keys: a KEK is never serialised")
}

// LoadKEK loads the local KEK named by url (OpenKEK also opens KMS URLs):
//
//   - "file://PATH": the file holds 32 random bytes as base64 (standard or URL
//     alphabet, padded or not, surrounding whitespace ignored) or as 32 raw bytes.
//     The file must not be accessible by group or others.
//   - "env://VAR": the variable holds the base64 of 32 bytes.
//
// Errors name the file or variable and never include any of its content.
func LoadKEK(url string, getenv func(string) string) (*KEK, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	switch {
	case !ok:
		// Why the URL is not echoed: someone may have pasted the key itself here.
		return nil, errors.New("keys: load kek: the kek setting is not a URL; use file://PATH or env://VAR")
	case scheme == "file":
		return loadKEKFile(rest)
	case scheme == "env":
		return loadKEKEnv(rest, getenv)
	case !validScheme(scheme):
		return nil, errors.New("keys: load kek: the kek setting is not a URL; use file://PATH or env://VAR")
	default:
		// Why only the scheme is echoed: gocloud's base64key:// carries the key in
		// the URL, and other URLs may carry tokens.
		if isKMSScheme(scheme) {
			return nil, fmt.Errorf("keys: load kek: scheme %q is a KMS key, not a local one; open it with OpenKEK", scheme)
		}
		return nil, fmt.Errorf("keys: load kek: scheme %q is not supported; use file://PATH, env://VAR or a KMS URL (hashivault://, awskms://, gcpkms://, azurekeyvault://)", scheme)
	}
}

func validScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

func loadKEKFile(path string) (*KEK, error) {
	if path == "" {
		return nil, errors.New("keys: load kek: file:// URL has no path")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys: load kek: %w", err)
	}
	defer f.Close()
	// Stat the open descriptor, not the path, so the mode checked is the mode of
	// the file actually read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keys: load kek: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: load kek: %s is not a regular file", path)
	}
	// Why: a key readable by other local users is a key shared with them.
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keys: load kek: %s is accessible by group or others (mode %#o); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKEKFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys: load kek: read %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKEKFile {
		return nil, fmt.Errorf("keys: load kek: %s is larger than %d bytes; it must hold 32 bytes, raw or base64", path, maxKEKFile)
	}
	if len(data) == kekSize {
		// Exactly 32 bytes can only be a raw key: base64 of 32 bytes is 43 or 44
		// characters.
		return newKEK(data), nil
	}
	raw, err := decodeKEKBase64(data)
	if err != nil {
		return nil, fmt.Errorf("keys: load kek: %s: %w", path, err)
	}
	defer clear(raw)
	return newKEK(raw), nil
}

func loadKEKEnv(name string, getenv func(string) string) (*KEK, error) {
	if name == "" {
		return nil, errors.New("keys: load kek: env:// URL has no variable name")
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	v := getenv(name)
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("keys: load kek: environment variable %s is unset or empty; it must hold the base64 of 32 random bytes", name)
	}
	raw, err := decodeKEKBase64([]byte(v))
	if err != nil {
		return nil, fmt.Errorf("keys: load kek: environment variable %s: %w", name, err)
	}
	defer clear(raw)
	return newKEK(raw), nil
}

// decodeKEKBase64 accepts standard or URL alphabet, padded or not. The error says
// what was wrong in terms of lengths only, never the content.
func decodeKEKBase64(data []byte) ([]byte, error) {
	s := bytes.TrimSpace(data)
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		buf := make([]byte, enc.DecodedLen(len(s)))
		n, err := enc.Decode(buf, s)
		if err == nil {
			raw = buf[:n]
			break
		}
		clear(buf)
	}
	if raw == nil {
		return nil, fmt.Errorf("content (%d bytes) is neither base64 nor 32 raw bytes", len(data))
	}
	if len(raw) != kekSize {
		n := len(raw)
		clear(raw)
		return nil, fmt.Errorf("content decodes to %d bytes; a KEK is exactly %d random bytes (generate one with `openssl rand -base64 32`)", n, kekSize)
	}
	return raw, nil
}

// GenerateKEKFile writes a new random KEK to path as base64, with mode 0600. It
// never overwrites: an existing file is an error, because replacing a KEK makes
// everything sealed under it unreadable.
func GenerateKEKFile(path string) error {
	var raw [kekSize]byte
	rand.Read(raw[:])
	defer clear(raw[:])
	text := make([]byte, base64.StdEncoding.EncodedLen(kekSize)+1)
	base64.StdEncoding.Encode(text, raw[:])
	text[len(text)-1] = '\n'
	defer clear(text)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys: generate kek: %w", err)
	}
	_, werr := f.Write(text)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return fmt.Errorf("keys: generate kek: write %s: %w", path, werr)
	}
	return nil
}
