package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzBodyLimit is the body cap in the fuzz targets: small, so that the fuzzer
// reaches the *http.MaxBytesError paths as easily as the others.
const fuzzBodyLimit = 4 << 10

func fuzzRequest(contentType string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/auth/v1/token", bytes.NewReader(body))
	r.Header.Del("Content-Type")
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, fuzzBodyLimit)
	return r
}

// jsonTopLevelKeys lists the member names of a JSON object body in order,
// duplicates included, as an independent reader sees them. ok is false when the
// body is not one well-formed object.
func jsonTopLevelKeys(body []byte) (keys []string, ok bool) {
	if !json.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return keys, true
}

// repeatedFold reports whether two names in keys are equal under Unicode
// simple folding, the way encoding/json matches struct fields.
func repeatedFold(keys []string) bool {
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if strings.EqualFold(keys[i], keys[j]) {
				return true
			}
		}
	}
	return false
}

func repeatedExact(keys []string) bool {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// FuzzParams: the OAuth parameter reader never panics, fails only with an
// invalid_request OAuthError or the body-size error, and never accepts a
// repeated parameter (RFC 6749 §3.2), an over-long or non-UTF-8 value, or a
// JSON body that is not exactly one well-formed object.
func FuzzParams(f *testing.F) {
	const form, js = "application/x-www-form-urlencoded", "application/json"
	seeds := []struct{ ct, body string }{
		// A well-formed password grant, as a form and as JSON.
		{form, "grant_type=password&username=ada%40example.com&password=plum-kettle-orbit-42"},
		{js, `{"grant_type":"password","username":"ada@example.com","password":"plum-kettle-orbit-42"}`},
		// Media-type parameters and case are allowed by RFC 9110.
		{"application/x-www-form-urlencoded; charset=UTF-8", "grant_type=refresh_token&refresh_token=ghr_x"},
		{"Application/JSON; charset=utf-8", `{"grant_type":"refresh_token"}`},
		// Repeated parameters, identical or not, and empty names.
		{form, "grant_type=password&grant_type=refresh_token"},
		{form, "a=1&a=1"},
		{form, "=&="},
		// Repeated JSON members: last-wins in encoding/json; must be refused.
		{js, `{"grant_type":"password","grant_type":"refresh_token","refresh_token":"ghr_x"}`},
		// Malformed forms: bad escapes and semicolons (rejected since Go 1.17).
		{form, "grant_type=password&username=%zz"},
		{form, "grant_type=password;username=x"},
		{form, "grant_type"},
		// Invalid UTF-8 after unescaping, and raw in a JSON string.
		{form, "password=%FF%FE"},
		{js, "{\"password\":\"\xff\xfe\"}"},
		// A lone surrogate escape: valid JSON text, decoded to U+FFFD.
		{js, `{"password":"\ud800"}`},
		// Values of the wrong JSON type, null, non-object bodies.
		{js, `{"grant_type":1}`},
		{js, `{"grant_type":["password"]}`},
		{js, `{"grant_type":null}`},
		{js, `null`},
		{js, `[]`},
		{js, `"grant_type=password"`},
		// Trailing content: a second object, garbage, a stray bracket.
		{js, `{"grant_type":"password"}{"grant_type":"refresh_token"}`},
		{js, `{"grant_type":"password"} x`},
		{js, `{"grant_type":"password"}}`},
		{js, `{"grant_type":"password"}]`},
		// Truncated and empty bodies.
		{js, `{"grant_type":`},
		{js, ``},
		{form, ``},
		// A value over the 4096-byte field limit, and a body over the cap.
		{form, "username=" + strings.Repeat("a", 4097)},
		{form, "username=" + strings.Repeat("a", fuzzBodyLimit+1)},
		// Unsupported and malformed content types.
		{"text/plain", "grant_type=password"},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\npassword\r\n--x--\r\n"},
		{"", "grant_type=password"},
		{"application/x-www-form-urlencoded; charset=\"", "grant_type=password"},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		v, err := params(fuzzRequest(contentType, body))
		if err != nil {
			var oe *OAuthError
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &oe):
				if oe.Status != http.StatusBadRequest || oe.Code != "invalid_request" {
					t.Fatalf("error %d %s, want 400 invalid_request", oe.Status, oe.Code)
				}
			case errors.As(err, &mbe):
				if len(body) <= fuzzBodyLimit {
					t.Fatalf("size error for a %d-byte body", len(body))
				}
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if len(body) > fuzzBodyLimit {
			t.Fatalf("accepted a %d-byte body over the %d-byte cap", len(body), fuzzBodyLimit)
		}
		for k, vs := range v {
			if len(vs) != 1 {
				t.Fatalf("parameter %q has %d values", k, len(vs))
			}
			if len(vs[0]) > maxFieldLen || !utf8.ValidString(vs[0]) {
				t.Fatalf("parameter %q accepted: %d bytes, UTF-8 %v", k, len(vs[0]), utf8.ValidString(vs[0]))
			}
		}
		mt, _, _ := mime.ParseMediaType(contentType)
		switch mt {
		case "application/x-www-form-urlencoded":
			raw, perr := url.ParseQuery(string(body))
			if perr != nil {
				t.Fatalf("accepted a form url.ParseQuery rejects: %v", perr)
			}
			for k, vs := range raw {
				if len(vs) > 1 {
					t.Fatalf("accepted repeated parameter %q", k)
				}
			}
		case "application/json":
			if !utf8.Valid(body) {
				// RFC 8259 §8.1: JSON text is UTF-8. Accepting it means a value the
				// client never sent (U+FFFD) is used as a credential.
				t.Fatalf("accepted a JSON body that is not UTF-8: %q", body)
			}
			if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
				return // no parameters at all
			}
			keys, ok := jsonTopLevelKeys(body)
			if !ok {
				t.Fatalf("accepted a body that is not one well-formed JSON object: %q", body)
			}
			if repeatedExact(keys) {
				t.Fatalf("accepted repeated JSON member in %q", body)
			}
		default:
			t.Fatalf("accepted content type %q", contentType)
		}
	})
}

// FuzzDecodeJSON: the strict JSON decoder never panics, every failure maps to
// a 400, 413 or 415 problem (never a 500), and what it accepts is one JSON
// object, in UTF-8, whose members are all known fields, none given twice.
func FuzzDecodeJSON(f *testing.F) {
	const js = "application/json"
	seeds := []struct{ ct, body string }{
		// A sign-up as a client sends it, with and without a charset.
		{js, `{"email":"ada@example.com","password":"plum-kettle-orbit-42"}`},
		{"application/json; charset=utf-8", `{"email":"ada@example.com","password":"p"}`},
		// Mass assignment: fields the request type does not have.
		{js, `{"email":"a@example.com","password":"p","roles":["admin"]}`},
		{js, `{"email":"a@example.com","password":"p","email_verified":true}`},
		// The same field twice, exactly and under case folding (encoding/json
		// matches names case-insensitively, "ſ" folding to "s").
		{js, `{"email":"a@example.com","email":"b@example.com","password":"p"}`},
		{js, `{"email":"a@example.com","EMAIL":"b@example.com","password":"p"}`},
		{js, `{"email":"a@example.com","pa\u017fsword":"p","password":"q"}`},
		// Wrong types, and non-object bodies.
		{js, `{"email":42,"password":"p"}`},
		{js, `{"email":"a@example.com","password":{"$ne":""}}`},
		{js, `[{"email":"a@example.com"}]`},
		{js, `null`},
		{js, `"ada@example.com"`},
		{js, `true`},
		// Trailing content.
		{js, `{"email":"a@example.com","password":"p"}{}`},
		{js, `{"email":"a@example.com","password":"p"}}`},
		{js, `{"email":"a@example.com","password":"p"} x`},
		{js, `{"email":"a@example.com","password":"p"}` + "\n\t "},
		// Truncated, empty and whitespace-only bodies.
		{js, `{"email":"a@example.com",`},
		{js, ``},
		{js, "   "},
		// Invalid UTF-8 inside a string, and escapes that decode oddly.
		{js, "{\"email\":\"a@example.com\",\"password\":\"plum-\xff-kettle\"}"},
		{js, `{"email":"a@example.com","password":"\ud800\u0000"}`},
		// An unknown field name long enough to need truncating in the reply.
		{js, `{"` + strings.Repeat("é", 40) + `":1}`},
		// Over the body cap.
		{js, `{"email":"` + strings.Repeat("a", fuzzBodyLimit) + `"}`},
		// Content types that are not JSON or do not parse.
		{"text/plain", `{"email":"a@example.com"}`},
		{"application/x-www-form-urlencoded", "email=a%40example.com"},
		{"", `{}`},
		{"application/json; charset=\"", `{}`},
		{"application/jsonx", `{}`},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		var req signupRequest
		err := decodeJSON(fuzzRequest(contentType, body), &req)
		if err != nil {
			p := toProblem(err)
			if p == nil {
				t.Fatalf("decode error %T would be a 500: %v", err, err)
			}
			switch p.Status {
			case http.StatusBadRequest, http.StatusUnsupportedMediaType:
			case http.StatusRequestEntityTooLarge:
				if len(body) <= fuzzBodyLimit {
					t.Fatalf("413 for a %d-byte body", len(body))
				}
			default:
				t.Fatalf("decode error status %d", p.Status)
			}
			for _, fe := range p.Errors {
				if len(fe.Field) > 64 {
					t.Fatalf("problem echoes a %d-byte field name", len(fe.Field))
				}
			}
			if _, merr := json.Marshal(p); merr != nil {
				t.Fatalf("problem does not marshal: %v", merr)
			}
			return
		}
		if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/json" {
			t.Fatalf("accepted content type %q", contentType)
		}
		if len(body) > fuzzBodyLimit {
			t.Fatalf("accepted a %d-byte body over the cap", len(body))
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
			return // decodes to the zero request; the handler reports missing fields
		}
		keys, ok := jsonTopLevelKeys(body)
		if !ok {
			t.Fatalf("accepted a body that is not one JSON object: %q", body)
		}
		for _, k := range keys {
			if !strings.EqualFold(k, "email") && !strings.EqualFold(k, "password") {
				t.Fatalf("accepted unknown field %q", k)
			}
		}
		if repeatedFold(keys) {
			t.Fatalf("accepted a field given twice: %q", body)
		}
	})
}

// FuzzBearer: the Authorization parser never panics, accepts only a single
// header whose scheme is Bearer (any case) followed by a non-empty token, and
// returns that token trimmed, taken from the header and nowhere else.
func FuzzBearer(f *testing.F) {
	seeds := []struct {
		h1, h2 string
		n      uint8
	}{
		{"Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig", "", 1}, // the ordinary case
		{"bearer abc", "", 1},                          // the scheme is case-insensitive (RFC 9110 §11.1)
		{"BEARER   abc  ", "", 1},                      // extra spaces around the token
		{"Bearer", "", 1},                              // scheme without a token
		{"Bearer ", "", 1},                             // scheme, space, nothing
		{"Bearer \t", "", 1},                           // only whitespace after the scheme
		{"Basic dXNlcjpwYXNz", "", 1},                  // another scheme
		{"DPoP eyJ.e30.sig", "", 1},                    // DPoP is not Bearer
		{"Bearerabc", "", 1},                           // no separator
		{"Bearer\tabc", "", 1},                         // a tab is not the separator
		{" Bearer abc", "", 1},                         // leading space before the scheme
		{"Bearer a b", "", 1},                          // a space inside the token
		{"Bearer abc", "Bearer def", 2},                // two headers: ambiguous, refused
		{"Bearer abc", "", 0},                          // no header at all
		{"Bearer \x00\xff", "", 1},                     // control and non-UTF-8 bytes
		{"Bearer " + strings.Repeat("A", 9000), "", 1}, // longer than any real token
	}
	for _, s := range seeds {
		f.Add(s.h1, s.h2, s.n)
	}
	f.Fuzz(func(t *testing.T, h1, h2 string, n uint8) {
		r := httptest.NewRequest(http.MethodGet, "/auth/v1/user", nil)
		var sent []string
		switch n % 3 {
		case 1:
			sent = []string{h1}
		case 2:
			sent = []string{h1, h2}
		}
		for _, h := range sent {
			r.Header.Add("Authorization", h)
		}
		tok, ok := bearer(r)
		if !ok {
			if tok != "" {
				t.Fatalf("refused but returned a token %q", tok)
			}
			if len(sent) == 1 {
				scheme, rest, cut := strings.Cut(sent[0], " ")
				if cut && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(rest) != "" {
					t.Fatalf("refused a well-formed bearer header %q", sent[0])
				}
			}
			return
		}
		if len(sent) != 1 {
			t.Fatalf("accepted %d Authorization headers", len(sent))
		}
		if tok == "" || tok != strings.TrimSpace(tok) {
			t.Fatalf("token %q is empty or untrimmed", tok)
		}
		scheme, rest, _ := strings.Cut(sent[0], " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) != tok {
			t.Fatalf("header %q gave token %q", sent[0], tok)
		}
	})
}
