package keys

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// maxTokenSize bounds the work an unauthenticated token can cause before its
// signature is checked. Gatehouse's own tokens are well under 4 KiB.
const maxTokenSize = 16 << 10

// acceptedAlgs is the whole algorithm allow-list: "none", HS* (key confusion with
// a public key used as an HMAC secret) and RS*/PS* never reach a verifier.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// Sign returns a compact JWS of payload signed by the active key, with protected
// header alg, kid and, when typ is not empty, typ (e.g. "at+jwt").
func (r *Ring) Sign(payload []byte, typ string) (string, error) {
	sk := r.snap.Load().signer
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: sk.alg, Key: jose.JSONWebKey{Key: sk.priv, KeyID: sk.kid}}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return out, nil
}

// Verify checks a compact JWS against the ring and returns its payload and kid.
// The key must be published (next, active or retiring; never retired). Errors wrap
// ErrMalformed, ErrUnknownKey or ErrBadSignature.
func (r *Ring) Verify(compact string) (payload []byte, kid string, err error) {
	return r.verify(compact, "", false)
}

// VerifyTyp is Verify that also requires the typ header to be typ (compared
// case-insensitively, an "application/" prefix ignored, as RFC 7515 §4.1.9 says).
// Why: the same keys may sign more than one kind of document, and explicit typing
// (RFC 8725 §3.11) stops one kind being accepted as another.
func (r *Ring) VerifyTyp(compact, typ string) (payload []byte, kid string, err error) {
	return r.verify(compact, typ, true)
}

func (r *Ring) verify(compact, typ string, checkTyp bool) ([]byte, string, error) {
	if len(compact) > maxTokenSize {
		return nil, "", fmt.Errorf("keys: verify: token larger than %d bytes: %w", maxTokenSize, ErrMalformed)
	}
	obj, err := jose.ParseSignedCompact(compact, acceptedAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return nil, "", fmt.Errorf("keys: verify: %w", ErrMalformed)
	}
	h := obj.Signatures[0].Protected
	if err := checkHeader(h); err != nil {
		return nil, "", err
	}
	if checkTyp {
		got, _ := h.ExtraHeaders[jose.HeaderType].(string)
		if !sameTyp(got, typ) {
			return nil, "", fmt.Errorf("keys: verify: typ is not %q: %w", typ, ErrMalformed)
		}
	}
	// Lock-free: the snapshot is immutable and swapped atomically on reload.
	vk, ok := r.snap.Load().verify[h.KeyID]
	if !ok {
		return nil, "", fmt.Errorf("keys: verify: %w", ErrUnknownKey)
	}
	// Why: the header is attacker-controlled; the key alone decides the algorithm,
	// so a token cannot make a key be used with an algorithm it was not made for.
	if h.Algorithm != string(vk.alg) {
		return nil, "", fmt.Errorf("keys: verify: alg does not match the key: %w", ErrBadSignature)
	}
	payload, err := obj.Verify(vk.pub)
	if err != nil {
		return nil, "", fmt.Errorf("keys: verify: %w", ErrBadSignature)
	}
	return payload, h.KeyID, nil
}

// checkHeader allows only alg, kid, typ and cty.
//
// Why an allow-list: jwk, jku, x5u and x5c let a token name its own key (the
// classic way to have a self-signed token accepted); crit and b64 change how the
// signature is computed; anything else is not something this ring ever writes.
func checkHeader(h jose.Header) error {
	if h.JSONWebKey != nil || h.Nonce != "" {
		return fmt.Errorf("keys: verify: forbidden header parameter: %w", ErrMalformed)
	}
	if _, err := h.Certificates(x509.VerifyOptions{}); !errors.Is(err, jose.ErrMissingX5cHeader) {
		return fmt.Errorf("keys: verify: forbidden header parameter x5c: %w", ErrMalformed)
	}
	for k := range h.ExtraHeaders {
		if k != jose.HeaderType && k != jose.HeaderContentType {
			return fmt.Errorf("keys: verify: forbidden header parameter: %w", ErrMalformed)
		}
	}
	if h.KeyID == "" {
		return fmt.Errorf("keys: verify: no kid: %w", ErrMalformed)
	}
	return nil
}

func sameTyp(got, want string) bool {
	trim := func(s string) string {
		if len(s) >= len("application/") && strings.EqualFold(s[:len("application/")], "application/") {
			return s[len("application/"):]
		}
		return s
	}
	return strings.EqualFold(trim(got), trim(want))
}
