package checks

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
)

// MissingAuth finds endpoints that answer 2xx without any token.
type MissingAuth struct{}

var _ scan.Check = MissingAuth{}

var missingAuthRules = []scan.Rule{
	{ID: "GH-AUTH-001", Title: "Endpoint answers without authentication", Severity: scan.SeverityHigh,
		Fix: "Require a valid access token on every non-public route (deny by default at the gateway), and mark truly public operations with security: [] in the spec."},
}

// ID implements scan.Check.
func (MissingAuth) ID() string { return "auth-missing" }

// Phase implements scan.Check.
func (MissingAuth) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (MissingAuth) Rules() []scan.Rule { return missingAuthRules }

// Run implements scan.Check. Only GET is tried: an unauthenticated write that
// succeeded would change data.
func (MissingAuth) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	type cand struct{ path, template, why string }
	var cands []cand
	if t.Spec != nil {
		for _, op := range t.Spec.Operations {
			if op.Method != http.MethodGet || !op.Secured {
				continue
			}
			p, ok := t.FillPath(op, func(string) string { return firstOr(t.Baseline.Values, "1") })
			if ok {
				cands = append(cands, cand{p + scan.QueryFor(op), op.Path, "the spec requires authentication for this operation"})
			}
		}
	} else {
		for _, p := range scan.DiscoveryPaths() {
			cands = append(cands, cand{p, p, "this path names the caller's identity or account"})
		}
	}
	var out []scan.Finding
	for _, c := range cands {
		resp, err := t.Do(ctx, scan.Request{Method: http.MethodGet, Path: c.path, Header: http.Header{"Accept": {"application/json"}}})
		if err != nil {
			if errors.Is(err, scan.ErrBackoff) {
				continue
			}
			return out, err
		}
		if !scan.Is2xx(resp.Status) || t.SoftNotFound(resp) {
			continue
		}
		if t.Spec == nil && !isJSON(resp.Header) {
			continue // without a spec, only an API-looking answer counts
		}
		out = append(out, newFinding(t, missingAuthRules[0], "auth-missing", http.MethodGet, c.template, "", resp, "",
			fmt.Sprintf("Answered %d with no Authorization header; %s.", resp.Status, c.why)))
	}
	return out, nil
}

func firstOr(vs []string, def string) string {
	if len(vs) > 0 {
		return vs[0]
	}
	return def
}

// Forgery sends tokens derived from a valid one with forged headers, claims or
// signatures to the baseline probe endpoint; any that is accepted is a finding.
type Forgery struct{}

var _ scan.Check = Forgery{}

var forgeryRules = []scan.Rule{
	{ID: "GH-AUTH-002", Title: "Unsigned token (alg: none) accepted", Severity: scan.SeverityHigh,
		Fix: "Verify tokens with an allow-list of algorithms fixed by the server (e.g. only ES256); never take the algorithm from the token."},
	{ID: "GH-AUTH-003", Title: "HS256 token signed with the server's public key accepted (key confusion)", Severity: scan.SeverityHigh,
		Fix: "Bind each key to one algorithm; an asymmetric public key must never be usable as an HMAC secret."},
	{ID: "GH-AUTH-004", Title: "Token with an embedded jwk header accepted", Severity: scan.SeverityHigh,
		Fix: "Ignore keys carried in the token (jwk header); verify only with keys from the server's own key set."},
	{ID: "GH-AUTH-005", Title: "Token with a foreign jku/x5u header accepted", Severity: scan.SeverityHigh,
		Fix: "Never fetch verification keys from URLs in the token; use a fixed, configured JWKS."},
	{ID: "GH-AUTH-006", Title: "Token kid header reaches a file path or query", Severity: scan.SeverityHigh,
		Fix: "Treat kid as an opaque lookup key into an in-memory key set; never use it in a path or SQL."},
	{ID: "GH-AUTH-007", Title: "ECDSA \"psychic signature\" (r = s = 0) accepted (CVE-2022-21449)", Severity: scan.SeverityHigh,
		Fix: "Upgrade the JWT/crypto library (Java 15–18 before the April 2022 patch are affected) and reject signatures with r or s outside [1, n-1]."},
	{ID: "GH-AUTH-008", Title: "Expired token accepted", Severity: scan.SeverityHigh,
		Fix: "Check exp (with at most a minute of leeway) on every request."},
	{ID: "GH-AUTH-009", Title: "Token with modified claims and the original signature accepted", Severity: scan.SeverityHigh,
		Fix: "Verify the signature over the exact header and payload bytes, then check exp, aud and iss against fixed expected values."},
	{ID: "GH-AUTH-010", Title: "Token HMAC secret is a common word", Severity: scan.SeverityHigh,
		Fix: "Use a random secret of at least 32 bytes from a secret store (better: asymmetric ES256/EdDSA keys) and rotate it; every token signed with the guessed secret can be forged."},
	{ID: "GH-AUTH-011", Title: "Token signature is not verified", Severity: scan.SeverityHigh,
		Fix: "Verify every token's signature before trusting any claim in it."},
}

// ID implements scan.Check.
func (Forgery) ID() string { return "auth-forgery" }

// Phase implements scan.Check.
func (Forgery) Phase() scan.Phase { return scan.PhaseActive }

// Rules implements scan.Check.
func (Forgery) Rules() []scan.Rule { return forgeryRules }

//go:embed jwtsecrets.txt
var jwtSecretsFile string

// WeakSecrets returns the shipped list of common JWT HMAC secrets.
func WeakSecrets() []string {
	var out []string
	for _, l := range strings.Split(jwtSecretsFile, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// attackerURL is unroutable by design (.invalid, RFC 2606): a vulnerable server
// that tries to fetch it fails, and no real host ever receives anything.
const attackerURL = "https://attacker.invalid/jwks.json"

type forged struct {
	rule, param, token, details string
}

// Run implements scan.Check.
func (f Forgery) Run(ctx context.Context, t *scan.Target) ([]scan.Finding, error) {
	var out []scan.Finding
	tok := t.Token()
	j, jerr := parseJWT(tok)
	// Weak secret: offline, no request.
	if jerr == nil {
		if sec, ok := crackHMAC(j, WeakSecrets()); ok {
			fd := newFinding(t, ruleByID(forgeryRules, "GH-AUTH-010"), "auth-forgery", "JWT", "/", j.alg(), nil, "",
				fmt.Sprintf("The %s signature of the session token verifies with the secret %q from a list of %d common secrets.", j.alg(), maskSecret(sec), len(WeakSecrets())))
			fd.Evidence.Request = "offline HMAC verification of the access token"
			out = append(out, fd)
		}
	}
	p := t.Baseline.Probe
	if p == nil {
		return out, nil
	}
	if p.SignatureIgnored() {
		return append(out, newFinding(t, ruleByID(forgeryRules, "GH-AUTH-011"), "auth-forgery", p.Method, p.Path, "broken-signature", p.BrokenSig, "Bearer <token with a corrupted signature>",
			fmt.Sprintf("A token with a corrupted signature got %d, like the valid token (no token: %d). Every other forgery is implied.", p.BrokenSig.Status, p.NoToken.Status))), nil
	}
	// Given token expired: judged without forging anything.
	if given, err := parseJWT(t.GivenToken); err == nil {
		if exp, ok := given.exp(); ok && time.Unix(exp, 0).Before(t.Now()) {
			resp := p.OK
			if t.Token() != t.GivenToken {
				r, err := t.Do(ctx, scan.Request{Method: p.Method, Path: p.Path, Token: t.GivenToken})
				if err != nil {
					return out, err
				}
				resp = r
			}
			if t.Accepted(resp) {
				out = append(out, newFinding(t, ruleByID(forgeryRules, "GH-AUTH-008"), "auth-forgery", p.Method, p.Path, "given-expired", resp, "Bearer <the --token, expired>",
					fmt.Sprintf("The --token expired at %s and was accepted.", time.Unix(exp, 0).UTC().Format(time.RFC3339))))
			}
		}
	}
	if jerr != nil {
		return out, nil
	}
	variants, err := f.variants(ctx, t, j)
	if err != nil {
		return out, err
	}
	for _, v := range variants {
		resp, err := t.Do(ctx, scan.Request{Method: p.Method, Path: p.Path, Token: v.token})
		if err != nil {
			if errors.Is(err, scan.ErrBackoff) {
				continue
			}
			return out, err
		}
		rule := ruleByID(forgeryRules, v.rule)
		auth := "Bearer " + describeToken(v.token)
		switch {
		case t.Accepted(resp):
			out = append(out, newFinding(t, rule, "auth-forgery", p.Method, p.Path, v.param, resp, auth,
				fmt.Sprintf("%s Accepted with %d (no token: %d).", v.details, resp.Status, p.NoToken.Status)))
		case v.rule == "GH-AUTH-006" && resp.Status >= 500 && sqlError(resp.Body) != "":
			fd := newFinding(t, rule, "auth-forgery", p.Method, p.Path, v.param+"-error", resp, auth,
				fmt.Sprintf("%s Rejected, but with %d and a database error (%q): the kid reaches a query.", v.details, resp.Status, sqlError(resp.Body)))
			fd.Severity = scan.SeverityMedium
			out = append(out, fd)
		}
	}
	return out, nil
}

// describeToken shows a forged token's header (never a real signature).
func describeToken(tok string) string {
	parts := strings.SplitN(tok, ".", 2)
	h, err := b64.DecodeString(parts[0])
	if err != nil {
		return "<forged token>"
	}
	return "<forged token, header " + string(h) + ">"
}

func maskSecret(s string) string {
	if len(s) <= 2 {
		return "**"
	}
	return s[:2] + strings.Repeat("*", len(s)-2)
}

// variants builds every forged token for j.
func (Forgery) variants(ctx context.Context, t *scan.Target, j *jwt) ([]forged, error) {
	var vs []forged
	for _, spelling := range []string{"none", "None", "NONE", "nOnE"} {
		h := seg(j.withHeader(map[string]any{"alg": spelling}))
		vs = append(vs, forged{"GH-AUTH-002", "alg-" + spelling, h + "." + j.RawPayload + ".",
			fmt.Sprintf("Header alg %q, original claims, empty signature.", spelling)})
	}
	now := t.Now().Unix()
	for _, c := range []struct {
		param, details string
		change         map[string]any
	}{
		{"exp", "exp moved one hour into the past, original signature kept.", map[string]any{"exp": now - 3600}},
		{"aud", "aud changed to https://attacker.invalid, original signature kept.", map[string]any{"aud": "https://attacker.invalid"}},
		{"iss", "iss changed to https://attacker.invalid, original signature kept.", map[string]any{"iss": "https://attacker.invalid"}},
	} {
		vs = append(vs, forged{"GH-AUTH-009", c.param, j.RawHeader + "." + j.withClaims(c.change) + "." + j.RawSig, c.details})
	}
	for _, k := range []struct{ param, kid string }{
		{"kid-traversal", "../../../../../../dev/null"},
		{"kid-injection", "' OR '1'='1"},
	} {
		vs = append(vs, forged{"GH-AUTH-006", k.param, forgeHS(j.withHeader(map[string]any{"kid": k.kid, "jku": nil, "x5u": nil, "jwk": nil}), j.RawPayload, nil),
			fmt.Sprintf("HS256 with kid %q, signed with an empty secret.", k.kid)})
	}
	ak, err := newAttackerKey()
	if err != nil {
		return nil, err
	}
	for _, c := range []struct {
		rule, param, details string
		header               map[string]any
	}{
		{"GH-AUTH-004", "jwk", "ES256 signed with a fresh attacker key embedded in the jwk header.", map[string]any{"jwk": ak.jwk(), "kid": ak.kid}},
		{"GH-AUTH-005", "jku", "ES256 signed with a fresh attacker key, jku " + attackerURL + ".", map[string]any{"jku": attackerURL, "kid": ak.kid}},
		{"GH-AUTH-005", "x5u", "ES256 signed with a fresh attacker key, x5u " + attackerURL + ".", map[string]any{"x5u": attackerURL, "kid": ak.kid}},
	} {
		s, err := ak.sign(j.withHeader(c.header), j.RawPayload)
		if err != nil {
			return nil, err
		}
		vs = append(vs, forged{c.rule, c.param, s, c.details})
	}
	alg := j.alg()
	if !strings.HasPrefix(alg, "ES") {
		alg = "ES256"
	}
	vs = append(vs, forged{"GH-AUTH-007", "psychic-" + alg, psychic(j.withHeader(nil), j.RawPayload, alg),
		fmt.Sprintf("%s with an all-zero signature (r = s = 0).", alg)})
	if strings.HasPrefix(j.alg(), "RS") || strings.HasPrefix(j.alg(), "ES") || strings.HasPrefix(j.alg(), "PS") || j.alg() == "EdDSA" {
		keys, err := jwksKeys(ctx, t)
		if err != nil {
			return nil, err
		}
		for i, k := range keys {
			if i >= 3 {
				break
			}
			for _, name := range sortedKeys(k.enc) {
				vs = append(vs, forged{"GH-AUTH-003", "hs256-" + name, forgeHS(j.withHeader(map[string]any{"kid": k.kid}), j.RawPayload, k.enc[name]),
					fmt.Sprintf("HS256 signed with the %s encoding of the JWKS public key %q as the HMAC secret.", name, k.kid)})
			}
		}
	}
	return vs, nil
}

type pubKey struct {
	kid string
	enc map[string][]byte
}

// jwksKeys fetches /.well-known/jwks.json from the target host, if present.
func jwksKeys(ctx context.Context, t *scan.Target) ([]pubKey, error) {
	resp, err := t.Client.Do(ctx, scan.Request{Method: http.MethodGet, Path: "/.well-known/jwks.json"})
	if err != nil {
		if errors.Is(err, scan.ErrBudget) || ctx.Err() != nil {
			return nil, err
		}
		return nil, nil
	}
	if resp.Status != http.StatusOK {
		return nil, nil
	}
	var set jose.JSONWebKeySet
	if json.Unmarshal(resp.Body, &set) != nil {
		return nil, nil
	}
	var out []pubKey
	for _, k := range set.Keys {
		pub := k.Public()
		if !pub.Valid() || pub.Key == nil {
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(pub.Key)
		if err != nil {
			continue
		}
		var pkcs1 []byte
		if rk, ok := pub.Key.(*rsa.PublicKey); ok {
			pkcs1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rk)})
		}
		out = append(out, pubKey{kid: k.KeyID, enc: publicKeyEncodings(der, pkcs1)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].kid < out[j].kid })
	return out, nil
}
