package protect

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestResponseModes(t *testing.T) {
	cases := []struct {
		name     string
		opts     Options
		status   int
		body     string
		action   Action
		kinds    []Kind
		contains string // in the body the client gets ("" when blocked)
		absent   string
	}{
		{"filter", Options{Response: ResponseFilter}, 200, leakyUser, ActionFiltered, []Kind{KindUndeclaredProperty}, `"email"`, "password_hash"},
		{"block", Options{Response: ResponseBlock}, 200, leakyUser, ActionBlocked, []Kind{KindUndeclaredProperty}, "", ""},
		{"report", Options{Response: ResponseReport}, 200, leakyUser, ActionReported, []Kind{KindUndeclaredProperty}, "password_hash", ""},
		{"secrets redact only", Options{Secrets: SecretsRedact}, 200, leakyUser, ActionRedacted, []Kind{KindSecret}, "[REDACTED:password_hash]", "$argon2id$"},
		{"secrets block", Options{Secrets: SecretsBlock}, 200, leakyUser, ActionBlocked, []Kind{KindSecret}, "", ""},
		{"secrets report", Options{Secrets: SecretsReport}, 200, leakyUser, ActionReported, []Kind{KindSecret}, "$argon2id$", ""},
		{"filter removes before scan", Options{Response: ResponseFilter, Secrets: SecretsBlock}, 200, leakyUser, ActionFiltered, []Kind{KindUndeclaredProperty}, `"id"`, "argon2"},
		{"declared 404", Options{Response: ResponseFilter}, 404, `{"error":"user not found"}`, "", nil, "user not found", ""},
		{"undeclared 500 filter", Options{Response: ResponseFilter}, 500, `{"error":"panic: at db.go:12"}`, ActionFiltered, []Kind{KindUndeclaredResponse}, "response-withheld", "db.go"},
		{"undeclared 500 block", Options{Response: ResponseBlock}, 500, `{"error":"x"}`, ActionBlocked, []Kind{KindUndeclaredResponse}, "", ""},
		{"malformed JSON", Options{Response: ResponseFilter}, 200, `{"id":`, ActionBlocked, []Kind{KindUnreadable}, "", ""},
		{"clean passes untouched", Options{Response: ResponseFilter, Secrets: SecretsRedact}, 200, `{"id":"u1","email":"u1@users.example","created_at":"2026-11-01T10:00:00Z"}`, "", nil, `{"id":"u1","email"`, ""},
		{"too large blocked", Options{Response: ResponseFilter, MaxResponseBytes: 10}, 200, leakyUser, ActionBlocked, []Kind{KindUnreadable}, "", ""},
		{"too large reported", Options{Secrets: SecretsReport, MaxResponseBytes: 10}, 200, leakyUser, ActionReported, []Kind{KindUnreadable}, "password_hash", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := demoRoute(t, "/v1/users/{id}", []string{"GET"}, tc.opts)
			resp := jsonResponse("GET", "/v1/users/u1", tc.status, tc.body)
			out, err := rt.FilterResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if tc.action == "" {
				if out != nil {
					t.Fatalf("outcome %+v, want none", out)
				}
			} else if out == nil || out.Action != tc.action {
				t.Fatalf("outcome %+v, want %s", out, tc.action)
			}
			if out != nil {
				for i, k := range tc.kinds {
					if i >= len(out.Findings) || out.Findings[i].Kind != k {
						t.Fatalf("findings %+v, want kinds %v", out.Findings, tc.kinds)
					}
				}
				for _, f := range out.Findings {
					if len(f.Excerpt) > 32 || strings.Contains(f.Excerpt, "ZmFrZWhhc2g") {
						t.Errorf("excerpt leaks: %q", f.Excerpt)
					}
				}
			}
			b, _ := io.ReadAll(resp.Body)
			if out.Blocked() {
				if len(b) != 0 {
					t.Fatalf("blocked response still has a body: %s", b)
				}
				return
			}
			if resp.ContentLength != int64(len(b)) || resp.Header.Get("Content-Length") != itoa(len(b)) {
				t.Errorf("Content-Length %d/%q for %d bytes", resp.ContentLength, resp.Header.Get("Content-Length"), len(b))
			}
			if !strings.Contains(string(b), tc.contains) || tc.absent != "" && strings.Contains(string(b), tc.absent) {
				t.Errorf("body %s: want %q, not %q", b, tc.contains, tc.absent)
			}
		})
	}
}

func TestCompressedResponseBlocked(t *testing.T) {
	rt := demoRoute(t, "/v1/users/{id}", []string{"GET"}, Options{Response: ResponseFilter})
	if !rt.ReadsResponseBody() {
		t.Fatal("ReadsResponseBody false with filtering on")
	}
	resp := jsonResponse("GET", "/v1/users/u1", 200, "\x1f\x8b...")
	resp.Header.Set("Content-Encoding", "gzip")
	out, err := rt.FilterResponse(resp)
	if err != nil || !out.Blocked() || out.Findings[0].Kind != KindUnreadable {
		t.Fatalf("outcome %+v, %v", out, err)
	}
}

func TestSecretsSkipBinary(t *testing.T) {
	rt, err := New(nil, Options{Secrets: SecretsBlock})
	if err != nil {
		t.Fatal(err)
	}
	resp := jsonResponse("GET", "/file", 200, "AKIAIOSFODNN7EXAMPLE")
	resp.Header.Set("Content-Type", "image/png")
	if out, err := rt.FilterResponse(resp); out != nil || err != nil {
		t.Fatalf("binary body judged: %+v %v", out, err)
	}
	resp = jsonResponse("GET", "/file", 200, "key=AKIAIOSFODNN7EXAMPLE")
	resp.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if out, _ := rt.FilterResponse(resp); !out.Blocked() || out.Findings[0].Reason != SecretAWSAccessKey || out.Findings[0].Excerpt != "AKIA…" {
		t.Fatalf("outcome %+v", out)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestUpstreamBodyError(t *testing.T) {
	rt, _ := New(nil, Options{Secrets: SecretsRedact})
	resp := jsonResponse("GET", "/x", 200, "")
	resp.Body = io.NopCloser(errReader{})
	if _, err := rt.FilterResponse(resp); err == nil {
		t.Fatal("read error swallowed")
	}
}

func TestShopReadOnlyAndNested(t *testing.T) {
	order, err := os.ReadFile("testdata/order_2k.json")
	if err != nil {
		t.Fatal(err)
	}
	rt := shopRoute(t, "/v2/orders", []string{"POST"}, Options{Validate: true})
	cases := []struct {
		name, body string
		kind       Kind
		field      string
	}{
		{"good", string(order), "", ""},
		{"readOnly status", strings.Replace(string(order), `{"items"`, `{"status":"paid","items"`, 1), KindReadOnlyProperty, "body.status"},
		{"readOnly nested total", strings.Replace(string(order), `{"items"`, `{"total":{"amount":0,"currency":"GBP"},"items"`, 1), KindReadOnlyProperty, "body.total"},
		{"readOnly in array item", strings.Replace(string(order), `"quantity":2,`, `"quantity":2,"unit_price":{"amount":1,"currency":"GBP"},`, 1), KindReadOnlyProperty, "body.items[0].unit_price"},
		{"unknown nested", strings.Replace(string(order), `"label":"Home",`, `"label":"Home","is_admin":true,`, 1), KindUnknownProperty, "body.shipping_address.is_admin"},
		{"bad enum", strings.Replace(string(order), `"method":"express"`, `"method":"teleport"`, 1), KindSchema, "body.delivery.method"},
		{"bad quantity", strings.Replace(string(order), `"quantity":6`, `"quantity":600`, 1), KindSchema, "body.items[4].quantity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := rt.CheckRequest(orderRequest(t, []byte(tc.body)), nil)
			if tc.kind == "" {
				if v != nil {
					t.Fatalf("refused: %+v", v)
				}
				return
			}
			if !v.Blocked() || v.Findings[0].Kind != tc.kind || v.Findings[0].Field != tc.field {
				t.Fatalf("violation %+v, want %s at %s", v, tc.kind, tc.field)
			}
		})
	}
	// The Idempotency-Key header is required and must be a uuid.
	r := orderRequest(t, order)
	r.Header.Set("Idempotency-Key", "not-a-uuid")
	if v := rt.CheckRequest(r, nil); !v.Blocked() || v.Findings[0].Field != "header.Idempotency-Key" {
		t.Fatalf("violation %+v", v)
	}
	r = orderRequest(t, order)
	r.Header.Set("Content-Type", "text/plain")
	if v := rt.CheckRequest(r, nil); v.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("violation %+v", v)
	}
	r = orderRequest(t, order)
	if v := (func() *Violation {
		rt2 := shopRoute(t, "/v2/orders", []string{"POST"}, Options{Validate: true, MaxBodyBytes: 100})
		return rt2.CheckRequest(r, nil)
	})(); v.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("violation %+v", v)
	}
}

func TestWAFReportOnly(t *testing.T) {
	w, err := NewWAF(WAFOptions{ReportOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := New(nil, Options{WAF: w})
	r := httptest.NewRequest("GET", "/v1/notes/search?q=%27%20OR%20%271%27%3D%271", nil)
	v := rt.CheckRequest(r, nil)
	if v == nil || v.Blocked() || v.Action != ActionReported || len(v.RuleIDs()) == 0 || v.AnomalyScore < 5 {
		t.Fatalf("violation %+v", v)
	}
}

func TestWAFOptionsRejected(t *testing.T) {
	for _, o := range []WAFOptions{{Paranoia: 5}, {Paranoia: -1}, {Threshold: -3}} {
		if _, err := NewWAF(o); !errors.Is(err, ErrWAFOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	spec, err := ParseSpec(mustRead(t, "testdata/shop.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec *Spec
		opts Options
		want error
	}{
		{"no spec", nil, Options{Validate: true, Path: "/v2/orders"}, ErrOptions},
		{"unknown path", spec, Options{Validate: true, Path: "/v2/nope"}, ErrNoOperation},
		{"undeclared method", spec, Options{Validate: true, Path: "/v2/orders", Methods: []string{"PUT"}}, ErrNoOperation},
		{"bad mode", spec, Options{Response: "strip", Path: "/v2/orders"}, ErrOptions},
		{"bad secrets", spec, Options{Secrets: "mask"}, ErrOptions},
	}
	for _, tc := range cases {
		if _, err := New(tc.spec, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, bad := range []string{"", "openapi: 3.0.0", "{", "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          $ref: 'http://evil.example/x.yaml'\n"} {
		if _, err := ParseSpec([]byte(bad)); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseSpec(%.30q) = %v", bad, err)
		}
	}
}

func TestServerBasePath(t *testing.T) {
	doc := "openapi: 3.0.3\ninfo: {title: x, version: '1'}\nservers: [{url: 'https://api.example.com/api'}]\npaths:\n  /items/{id}:\n    get:\n      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]\n      responses: {'200': {description: ok}}\n"
	spec, err := ParseSpec([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(spec, Options{Validate: true, Path: "/api/items/{itemId}"})
	if err != nil {
		t.Fatal(err)
	}
	if v := rt.CheckRequest(httptest.NewRequest("GET", "/api/items/x", nil), map[string]string{"itemId": "x"}); !v.Blocked() || v.Findings[0].Field != "path.id" {
		t.Fatalf("violation %+v", v)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
