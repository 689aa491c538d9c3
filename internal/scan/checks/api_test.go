package checks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scan"
	"github.com/gatehouse-dev/gatehouse/internal/scan/openapi"
)

// api is a small fake API for the checks' tests. With no vulnerabilities
// switched on it is secure: ES256 tokens verified strictly, owner checks, rate
// limits, nosniff, no-store on tokens, no CORS, no debug endpoints. Each key
// in vuln switches one weakness on.
type api struct {
	vuln     map[string]bool
	key      *ecdsa.PrivateKey
	hsSecret string // when set, tokens are HS256 with this secret
	now      func() time.Time

	mu        sync.Mutex
	notes     map[string]note
	nextID    int
	failures  int
	calls     map[string]int
	issuedSig string
	requests  int
}

type note struct {
	ID, Title, Owner string
}

var testUsers = map[string]string{"alice@x": "pw-alice-123", "bob@x": "pw-bob-456"}

func newAPI(t testing.TB, vulns ...string) *api {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &api{vuln: map[string]bool{}, key: k, notes: map[string]note{}, calls: map[string]int{}, now: time.Now}
	for _, v := range vulns {
		a.vuln[v] = true
	}
	return a
}

const apiSpec = `openapi: 3.1.0
info: {title: fake, version: "1"}
security: [{bearer: []}]
paths:
  /v1/health:
    get:
      security: []
      responses:
        "200": {description: ok}
  /v1/me:
    get:
      responses:
        "200":
          description: me
          content: {application/json: {schema: {$ref: "#/components/schemas/Me"}}}
  /v1/notes:
    get:
      responses:
        "200": {description: list}
    post:
      requestBody:
        content: {application/json: {schema: {type: object, required: [title], properties: {title: {type: string}}}}}
      responses:
        "201": {description: created}
  /v1/notes/search:
    get:
      parameters:
        - {name: q, in: query, required: true, schema: {type: string}}
      responses:
        "200": {description: found}
  /v1/notes/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200": {description: note}
    delete:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "204": {description: gone}
  /v1/users/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: user
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                properties:
                  id: {type: string}
                  email: {type: string}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
  schemas:
    Me:
      type: object
      properties:
        sub: {type: string}
`

func (a *api) issue(sub string, exp time.Time) string {
	h := map[string]any{"alg": "ES256", "typ": "JWT", "kid": "k1"}
	claims := map[string]any{"sub": sub, "exp": exp.Unix(), "iat": a.now().Unix(), "aud": "api", "iss": "https://issuer.test"}
	if a.hsSecret != "" {
		h["alg"] = "HS256"
		in := seg(h) + "." + seg(claims)
		return in + "." + hmacSign("HS256", []byte(a.hsSecret), in)
	}
	in := seg(h) + "." + seg(claims)
	sum := sha256.Sum256([]byte(in))
	r, s, _ := ecdsa.Sign(rand.Reader, a.key, sum[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	tok := in + "." + b64.EncodeToString(sig)
	a.mu.Lock()
	a.issuedSig = b64.EncodeToString(sig)
	a.mu.Unlock()
	return tok
}

func (a *api) pubPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	return publicKeyEncodings(der, nil)["pem"]
}

func ecVerify(pub *ecdsa.PublicKey, input string, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	sum := sha256.Sum256([]byte(input))
	return ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// verify returns the subject of an acceptable token, the status otherwise.
func (a *api) verify(r *http.Request) (string, int, string) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", 401, "missing token"
	}
	j, err := parseJWT(tok)
	if err != nil {
		return "", 401, "bad token"
	}
	parts := strings.Split(tok, ".")
	input := parts[0] + "." + parts[1]
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return "", 401, "bad signature encoding"
	}
	alg := j.alg()
	kid, _ := j.Header["kid"].(string)
	valid := false
	switch {
	case a.vuln["any-sig"]:
		valid = true
	case strings.EqualFold(alg, "none"):
		valid = a.vuln["alg-none"] && len(sig) == 0
	case alg == "HS256" && a.vuln["kid-sql"] && strings.Contains(kid, "'"):
		return "", 500, "SQLITE_ERROR: near \"OR\": syntax error in SELECT key FROM keys WHERE kid = '" + kid + "'"
	case alg == "HS256" && a.vuln["kid-path"] && strings.Contains(kid, "dev/null"):
		valid = hmacSign("HS256", nil, input) == parts[2]
	case alg == "HS256" && a.vuln["hs-pubkey"]:
		valid = hmacSign("HS256", a.pubPEM(), input) == parts[2]
	case alg == "HS256" && a.hsSecret != "":
		valid = hmacSign("HS256", []byte(a.hsSecret), input) == parts[2]
	case alg == "ES256":
		pub := &a.key.PublicKey
		if jwk, ok := j.Header["jwk"].(map[string]any); ok && a.vuln["jwk"] {
			x, _ := b64.DecodeString(fmt.Sprint(jwk["x"]))
			y, _ := b64.DecodeString(fmt.Sprint(jwk["y"]))
			if k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...)); err == nil {
				pub = k
			}
		}
		if _, ok := j.Header["jku"]; ok && a.vuln["jku"] {
			valid = true // pretends the foreign key set was fetched
		}
		if a.vuln["psychic"] && len(sig) == 64 && strings.Trim(string(sig), "\x00") == "" {
			valid = true
		}
		if a.vuln["sig-cache"] {
			a.mu.Lock()
			valid = valid || parts[2] == a.issuedSig
			a.mu.Unlock()
		}
		valid = valid || ecVerify(pub, input, sig)
	}
	if !valid {
		return "", 401, "invalid signature"
	}
	if exp, ok := j.exp(); !a.vuln["expired"] && (!ok || time.Unix(exp, 0).Before(a.now())) {
		return "", 401, "expired"
	}
	if !a.vuln["sig-cache"] && (j.Claims["aud"] != "api" || j.Claims["iss"] != "https://issuer.test") {
		return "", 401, "wrong audience or issuer"
	}
	sub, _ := j.Claims["sub"].(string)
	return sub, 0, ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	if !a.vuln["no-nosniff"] {
		w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	if r.TLS != nil && !a.vuln["no-hsts"] {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	if o := r.Header.Get("Origin"); o != "" {
		switch {
		case a.vuln["cors-reflect"]:
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		case a.vuln["cors-star"]:
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		case a.vuln["cors-nocreds"]:
			w.Header().Set("Access-Control-Allow-Origin", o)
		}
	}
	p := r.URL.Path
	switch {
	case p == "/auth/v1/token" && r.Method == http.MethodPost:
		a.token(w, r)
		return
	case p == "/.well-known/jwks.json":
		pub, _ := a.key.PublicKey.Bytes()
		writeJSON(w, 200, map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
			"x": b64.EncodeToString(pub[1:33]), "y": b64.EncodeToString(pub[33:65])}}})
		return
	case p == "/v1/health":
		writeJSON(w, 200, map[string]string{"status": "ok"})
		return
	case p == "/debug/pprof/" && a.vuln["pprof"]:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>/debug/pprof/<br>Types of profiles available: goroutine heap</html>")
		return
	case p == "/metrics" && a.vuln["metrics"]:
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total 3\n")
		return
	case p == "/.env" && a.vuln["dotenv"]:
		fmt.Fprint(w, "DATABASE_URL=postgres://u:p@db/x\nSECRET_KEY=abc\n")
		return
	case p == "/v1/notes" && r.Method == http.MethodGet && a.vuln["noauth"]:
		writeJSON(w, 200, map[string]any{"notes": []any{}})
		return
	}
	if strings.HasPrefix(p, "/v1/") {
		sub, status, msg := a.verify(r)
		if status != 0 {
			writeJSON(w, status, map[string]string{"error": msg})
			return
		}
		a.authed(w, r, sub)
		return
	}
	if a.vuln["soft404"] {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>single page app</body></html>")
		return
	}
	writeJSON(w, 404, map[string]string{"error": "not found"})
}

func (a *api) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if !a.vuln["token-cache"] {
		w.Header().Set("Cache-Control", "no-store")
	}
	user, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	a.mu.Lock()
	fails := a.failures
	a.mu.Unlock()
	if a.vuln["lockout"] && fails >= 5 {
		writeJSON(w, http.StatusLocked, map[string]string{"error": "account locked"})
		return
	}
	if !a.vuln["no-ratelimit"] && !a.vuln["lockout"] && fails >= 5 {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, 429, map[string]string{"error": "slow down"})
		return
	}
	if want, ok := testUsers[user]; !ok || want != pw || r.PostForm.Get("grant_type") != "password" {
		a.mu.Lock()
		a.failures++
		a.mu.Unlock()
		writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
		return
	}
	writeJSON(w, 200, map[string]any{"access_token": a.issue(user, a.now().Add(time.Hour)), "token_type": "Bearer", "expires_in": 3600})
}

func (a *api) authed(w http.ResponseWriter, r *http.Request, sub string) {
	a.mu.Lock()
	a.calls[sub]++
	calls := a.calls[sub]
	a.mu.Unlock()
	if !a.vuln["no-ratelimit"] && calls > 120 {
		w.Header().Set("Retry-After", "30")
		writeJSON(w, 429, map[string]string{"error": "rate limited"})
		return
	}
	p := r.URL.Path
	switch {
	case p == "/v1/me":
		writeJSON(w, 200, map[string]string{"sub": sub})
	case p == "/v1/notes" && r.Method == http.MethodPost:
		var in struct{ Title string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		a.mu.Lock()
		a.nextID++
		n := note{ID: strconv.Itoa(a.nextID), Title: in.Title, Owner: sub}
		a.notes[n.ID] = n
		a.mu.Unlock()
		writeJSON(w, 201, map[string]string{"id": n.ID, "title": n.Title})
	case p == "/v1/notes" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"notes": []any{}})
	case p == "/v1/notes/search":
		a.search(w, r)
	case strings.HasPrefix(p, "/v1/notes/"):
		id := strings.TrimPrefix(p, "/v1/notes/")
		a.mu.Lock()
		n, ok := a.notes[id]
		a.mu.Unlock()
		if !ok || (n.Owner != sub && !a.vuln["bola"]) {
			writeJSON(w, 404, map[string]string{"error": "no such note"})
			return
		}
		if r.Method == http.MethodDelete {
			a.mu.Lock()
			delete(a.notes, id)
			a.mu.Unlock()
			w.WriteHeader(204)
			return
		}
		writeJSON(w, 200, map[string]string{"id": n.ID, "title": n.Title})
	case strings.HasPrefix(p, "/v1/users/"):
		u := map[string]any{"id": strings.TrimPrefix(p, "/v1/users/"), "email": "a@x"}
		if a.vuln["leak"] {
			u["password_hash"] = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
			u["owner_email"] = "a@x"
		}
		writeJSON(w, 200, u)
	default:
		writeJSON(w, 404, map[string]string{"error": "not found"})
	}
}

func (a *api) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	switch {
	case a.vuln["sql"] && strings.ContainsAny(q, `'"`):
		writeJSON(w, 500, map[string]string{"error": "SQLITE_ERROR: near \"'\": syntax error"})
	case a.vuln["quote500"] && strings.ContainsAny(q, `'`):
		writeJSON(w, 500, map[string]string{"error": "internal error"})
	case a.vuln["ssti"]:
		writeJSON(w, 200, map[string]string{"q": strings.NewReplacer("{{7*7}}", "49", "${7*7}", "49").Replace(q)})
	case a.vuln["xss"]:
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>results for %s</p>", q)
	case a.vuln["stack"] && strings.Contains(q, `"`):
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		fmt.Fprint(w, "panic: bad input\n\ngoroutine 1 [running]:\nmain.search()\n\t/app/main.go:42 +0x1d\n")
	default:
		writeJSON(w, 200, map[string]any{"q": q, "notes": []any{}})
	}
}

// requestCount is how many requests the fake API received.
func (a *api) requestCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

type targetOpts struct {
	spec   bool
	users  []string
	token  string
	budget int
}

// prepared starts a and returns a prepared target for it.
func prepared(t *testing.T, a *api, tlsServer bool, o targetOpts) (*scan.Target, *httptest.Server) {
	t.Helper()
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewTLSServer(a)
	} else {
		srv = httptest.NewServer(a)
	}
	t.Cleanup(srv.Close)
	return preparedFor(t, srv, o), srv
}

func preparedFor(t *testing.T, srv *httptest.Server, o targetOpts) *scan.Target {
	t.Helper()
	tgt := newTargetFor(t, srv, o)
	if err := tgt.Prepare(t.Context()); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return tgt
}

func newTargetFor(t *testing.T, srv *httptest.Server, o targetOpts) *scan.Target {
	t.Helper()
	opts := scan.TargetOptions{URL: srv.URL, Token: o.token, PlainPorts: []string{}}
	opts.Client.Budget = o.budget
	if srv.TLS != nil {
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		opts.Client.TLS = &tls.Config{RootCAs: pool}
	}
	if o.spec {
		s, err := openapi.Parse([]byte(apiSpec))
		if err != nil {
			t.Fatal(err)
		}
		opts.Spec = s
	}
	for _, u := range o.users {
		opts.Users = append(opts.Users, scan.Credential{Name: u, Password: testUsers[u]})
	}
	tgt, err := scan.NewTarget(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

// run runs c and fails the test on a check error.
func run(t *testing.T, c scan.Check, tgt *scan.Target) []scan.Finding {
	t.Helper()
	fs, err := c.Run(t.Context(), tgt)
	if err != nil {
		t.Fatalf("%s: %v", c.ID(), err)
	}
	for _, f := range fs {
		if f.Fingerprint == "" || f.Fix == "" || f.Evidence.Request == "" || f.Check != c.ID() {
			t.Errorf("%s: incomplete finding %+v", c.ID(), f)
		}
		for _, pw := range testUsers {
			if strings.Contains(fmt.Sprintf("%+v", f), pw) {
				t.Errorf("%s: finding leaks a password: %+v", c.ID(), f)
			}
		}
		for _, s := range tgt.Sessions {
			if strings.Contains(fmt.Sprintf("%+v", f), s.Token) {
				t.Errorf("%s: finding leaks a session token", c.ID())
			}
		}
	}
	return fs
}

// has reports whether fs holds a finding with id (and param, if given) at sev.
func has(fs []scan.Finding, id string, sev scan.Severity, param string) bool {
	for _, f := range fs {
		if f.ID == id && f.Severity == sev && (param == "" || f.Param == param) {
			return true
		}
	}
	return false
}

func ids(fs []scan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+"/"+f.Param+"/"+f.Severity.String())
	}
	return out
}
