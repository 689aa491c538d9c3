package transit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/envelope"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func newService(tb testing.TB) (*Service, *store.DB) {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(tb.TempDir(), "g.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	p := filepath.Join(tb.TempDir(), "kek")
	if err := keys.GenerateKEKFile(p); err != nil {
		tb.Fatal(err)
	}
	kek, err := keys.LoadKEK("file://"+p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := envelope.New(ctx, db, kek, envelope.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return New(db, k, Options{}), db
}

func TestEncryptDecryptVersions(t *testing.T) {
	ctx := context.Background()
	sv, _ := newService(t)
	if _, err := sv.Create(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Create(ctx, "orders"); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	ct1, err := sv.Encrypt(ctx, "orders", []byte("4111 1111 1111 1111"), []byte("user-7"))
	if err != nil || !strings.HasPrefix(ct1, "gh:v1:") {
		t.Fatalf("encrypt: %q %v", ct1, err)
	}
	pt, err := sv.Decrypt(ctx, "orders", ct1, []byte("user-7"))
	if err != nil || string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	info, err := sv.Rotate(ctx, "orders")
	if err != nil || info.LatestVersion != 2 || len(info.Versions) != 2 {
		t.Fatalf("rotate: %+v %v", info, err)
	}
	ct2, _ := sv.Encrypt(ctx, "orders", []byte("x"), nil)
	if !strings.HasPrefix(ct2, "gh:v2:") {
		t.Fatalf("after rotate: %q", ct2)
	}
	re, err := sv.Rewrap(ctx, "orders", ct1, []byte("user-7"))
	if err != nil || !strings.HasPrefix(re, "gh:v2:") {
		t.Fatalf("rewrap: %q %v", re, err)
	}
	if _, err := sv.Decrypt(ctx, "orders", ct1, []byte("user-7")); err != nil {
		t.Fatalf("old version before retirement: %v", err)
	}
	if _, err := sv.SetMinDecryptionVersion(ctx, "orders", 3); !errors.Is(err, ErrBadMin) {
		t.Fatalf("min above latest: %v", err)
	}
	if _, err := sv.SetMinDecryptionVersion(ctx, "orders", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Decrypt(ctx, "orders", ct1, []byte("user-7")); !errors.Is(err, ErrRetired) {
		t.Fatalf("retired version: %v", err)
	}
	if pt, err := sv.Decrypt(ctx, "orders", re, []byte("user-7")); err != nil || string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("rewrapped: %q %v", pt, err)
	}
	sv.Create(ctx, "other")
	other, _ := sv.Encrypt(ctx, "other", []byte("x"), nil)
	for _, h := range []struct {
		name, key, ct string
		ctx           []byte
		want          error
	}{
		{"wrong context", "orders", re, []byte("user-8"), ErrDecrypt},
		{"missing context", "orders", re, nil, ErrDecrypt},
		{"other key's ciphertext", "orders", strings.Replace(other, "gh:v1:", "gh:v2:", 1), nil, ErrDecrypt},
		{"version from the future", "orders", strings.Replace(re, "gh:v2:", "gh:v9:", 1), []byte("user-7"), ErrDecrypt},
		{"garbage", "orders", "hello", nil, ErrBadCiphertext},
		{"unknown key", "nope", re, nil, ErrNotFound},
		{"bad name", "../etc", re, nil, ErrBadName},
	} {
		if _, err := sv.Decrypt(ctx, h.key, h.ct, h.ctx); !errors.Is(err, h.want) {
			t.Errorf("%s: %v, want %v", h.name, err, h.want)
		}
	}
	if _, err := sv.Encrypt(ctx, "orders", make([]byte, MaxPlaintext+1), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

// TestCacheSeesOtherReplicas: a rotation through another Service (replica) is
// used for decryption at once and for encryption after the cache TTL.
func TestCacheSeesOtherReplicas(t *testing.T) {
	ctx := context.Background()
	a, db := newService(t)
	a.Create(ctx, "k")
	a.Encrypt(ctx, "k", []byte("warm"), nil)
	b := New(db, a.s, Options{})
	b.Rotate(ctx, "k")
	ct, _ := b.Encrypt(ctx, "k", []byte("v2"), nil)
	if pt, err := a.Decrypt(ctx, "k", ct, nil); err != nil || string(pt) != "v2" {
		t.Fatalf("replica a: %q %v", pt, err)
	}
}

func TestParseCiphertext(t *testing.T) {
	body := base64.StdEncoding.EncodeToString(make([]byte, 28))
	for _, tc := range []struct {
		in   string
		ok   bool
		ver  int
		name string
	}{
		{"gh:v1:" + body, true, 1, "minimal"},
		{"gh:v12:" + body, true, 12, "two digits"},
		{"gh:v0:" + body, false, 0, "version zero"},
		{"gh:v01:" + body, false, 0, "leading zero"},
		{"gh:v-1:" + body, false, 0, "negative"},
		{"gh:v+1:" + body, false, 0, "plus"},
		{"gh:v:" + body, false, 0, "no version"},
		{"gh:v99999999999:" + body, false, 0, "huge version"},
		{"gh:v1" + body, false, 0, "no colon"},
		{"vault:v1:" + body, false, 0, "vault prefix"},
		{"gh:v1: " + body, false, 0, "space"},
		{"gh:v1:" + strings.TrimRight(body, "="), false, 0, "unpadded"},
		{"gh:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 27)), false, 0, "short body"},
		{"gh:v1:" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(make([]byte, 30)), "A", "_"), false, 0, "url alphabet"},
		{"", false, 0, "empty"},
	} {
		v, _, err := ParseCiphertext(tc.in)
		if (err == nil) != tc.ok || v != tc.ver {
			t.Errorf("%s: %d %v", tc.name, v, err)
		}
	}
}

func FuzzParseCiphertext(f *testing.F) {
	f.Add("gh:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 40))) // valid shape
	f.Add("gh:v2147483647:AAAA")                                          // version near int32 max
	f.Add("gh:v1:====")                                                   // padding only
	f.Add("gh:v1:\x00")                                                   // control byte
	f.Fuzz(func(t *testing.T, s string) {
		v, body, err := ParseCiphertext(s)
		if err != nil {
			return
		}
		if v < 1 || v > maxVersion || len(body) < 28 {
			t.Fatalf("accepted %q as v%d with %d bytes", s, v, len(body))
		}
		// What parses re-encodes to itself: one spelling per ciphertext.
		if again := Prefix + itoa(v) + ":" + base64.StdEncoding.EncodeToString(body); again != s {
			t.Fatalf("%q re-encodes as %q", s, again)
		}
	})
}

func itoa(v int) string { return strconv.Itoa(v) }

type events struct {
	mu sync.Mutex
	ev []store.Event
}

func (e *events) Record(_ context.Context, ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func call(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var m map[string]any
	json.Unmarshal(w.Body.Bytes(), &m)
	return w.Code, m, w.Header()
}

func TestHTTP(t *testing.T) {
	sv, _ := newService(t)
	rec := &events{}
	h := Handler(sv, HandlerOptions{Audit: rec, Caller: func(*http.Request) string { return "notes-backend" }})
	secret := "the card number 4111-1111"
	b64s := base64.StdEncoding.EncodeToString([]byte(secret))
	ctxB64 := base64.StdEncoding.EncodeToString([]byte("row-42"))

	if code, m, _ := call(t, h, "POST", "/admin/v1/transit/keys/cards", ""); code != 201 || m["latest_version"] != float64(1) {
		t.Fatalf("create: %d %v", code, m)
	}
	code, m, _ := call(t, h, "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"`+b64s+`","context":"`+ctxB64+`"}`)
	ct, _ := m["ciphertext"].(string)
	if code != 200 || !strings.HasPrefix(ct, "gh:v1:") {
		t.Fatalf("encrypt: %d %v", code, m)
	}
	if code, m, _ := call(t, h, "POST", "/admin/v1/transit/decrypt/cards", `{"ciphertext":"`+ct+`","context":"`+ctxB64+`"}`); code != 200 || m["plaintext"] != b64s {
		t.Fatalf("decrypt: %d %v", code, m)
	}
	call(t, h, "POST", "/admin/v1/transit/keys/cards/rotate", "")
	if code, m, _ := call(t, h, "POST", "/admin/v1/transit/rewrap/cards", `{"ciphertext":"`+ct+`","context":"`+ctxB64+`"}`); code != 200 || !strings.HasPrefix(m["ciphertext"].(string), "gh:v2:") {
		t.Fatalf("rewrap: %d %v", code, m)
	}
	code, m, _ = call(t, h, "POST", "/admin/v1/transit/encrypt/cards", `{"batch_input":[{"plaintext":"`+b64s+`"},{"plaintext":"not base64!"},{"plaintext":""}]}`)
	res, _ := m["batch_results"].([]any)
	if code != 200 || len(res) != 3 || res[1].(map[string]any)["error"] == nil || res[2].(map[string]any)["ciphertext"] == nil {
		t.Fatalf("batch: %d %v", code, m)
	}
	if code, m, _ := call(t, h, "GET", "/admin/v1/transit/keys/cards", ""); code != 200 || m["latest_version"] != float64(2) {
		t.Fatalf("info: %d %v", code, m)
	}
	if code, _, _ := call(t, h, "POST", "/admin/v1/transit/keys/cards/config", `{"min_decryption_version":2}`); code != 200 {
		t.Fatalf("config: %d", code)
	}
	if code, m, _ := call(t, h, "POST", "/admin/v1/transit/decrypt/cards", `{"ciphertext":"`+ct+`","context":"`+ctxB64+`"}`); code != 400 || !strings.Contains(m["detail"].(string), "retired") {
		t.Fatalf("retired: %d %v", code, m)
	}

	bigBatch := `{"batch_input":[` + strings.TrimSuffix(strings.Repeat(`{"plaintext":"AA=="},`, MaxBatch+1), ",") + `]}`
	bad := []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown key", "POST", "/admin/v1/transit/encrypt/nope", `{"plaintext":"AA=="}`, 404},
		{"bad name", "POST", "/admin/v1/transit/keys/a.b", ``, 400},
		{"long name", "POST", "/admin/v1/transit/keys/" + strings.Repeat("a", 65), ``, 400},
		{"exists", "POST", "/admin/v1/transit/keys/cards", ``, 409},
		{"unknown field", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"AA==","extra":1}`, 400},
		{"wrong type", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":5}`, 400},
		{"trailing data", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"AA=="} {}`, 400},
		{"not json", "POST", "/admin/v1/transit/encrypt/cards", `plaintext=AA==`, 400},
		{"plaintext not base64", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"%%%"}`, 400},
		{"context not base64", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"AA==","context":"%"}`, 400},
		{"no plaintext", "POST", "/admin/v1/transit/encrypt/cards", `{}`, 400},
		{"ciphertext to encrypt", "POST", "/admin/v1/transit/encrypt/cards", `{"ciphertext":"gh:v1:AA=="}`, 400},
		{"both single and batch", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"AA==","batch_input":[{"plaintext":"AA=="}]}`, 400},
		{"empty batch", "POST", "/admin/v1/transit/encrypt/cards", `{"batch_input":[]}`, 400},
		{"batch too big", "POST", "/admin/v1/transit/encrypt/cards", bigBatch, 400},
		{"garbage ciphertext", "POST", "/admin/v1/transit/decrypt/cards", `{"ciphertext":"gh:v1:!!"}`, 400},
		{"too large", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, MaxPlaintext+1)) + `"}`, 413},
		{"body too large", "POST", "/admin/v1/transit/encrypt/cards", `{"plaintext":"` + strings.Repeat("A", MaxBody) + `"}`, 413},
		{"min zero", "POST", "/admin/v1/transit/keys/cards/config", `{"min_decryption_version":0}`, 400},
		{"min missing", "POST", "/admin/v1/transit/keys/cards/config", `{}`, 400},
		{"wrong method", "DELETE", "/admin/v1/transit/keys/cards", ``, 405},
		{"unknown path", "POST", "/admin/v1/transit/export/cards", ``, 404},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, m, hdr := call(t, h, b.method, b.path, b.body)
			if code != b.status {
				t.Fatalf("status %d, want %d (%v)", code, b.status, m)
			}
			if code != 405 && b.name != "unknown path" && hdr.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("content type %q", hdr.Get("Content-Type"))
			}
		})
	}
	info, _ := sv.Info(context.Background(), "cards")
	if info.LatestVersion != 2 || info.MinDecryptionVersion != 2 {
		t.Fatalf("hostile requests changed the key: %+v", info)
	}

	// Every call audited; no plaintext or context in any event.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	kinds := map[string]int{}
	for _, e := range rec.ev {
		kinds[e.Type]++
		if e.Detail["service"] != "notes-backend" {
			t.Fatalf("event without caller: %+v", e)
		}
		blob, _ := json.Marshal(e)
		for _, s := range []string{secret, b64s, ctxB64, "row-42"} {
			if strings.Contains(string(blob), s) {
				t.Fatalf("event leaks %q: %s", s, blob)
			}
		}
	}
	for _, k := range []string{"transit_key_created", "transit_encrypt", "transit_decrypt", "transit_rewrap", "transit_key_rotated", "transit_key_configured"} {
		if kinds[k] == 0 {
			t.Errorf("no %s event (%v)", k, kinds)
		}
	}
}
