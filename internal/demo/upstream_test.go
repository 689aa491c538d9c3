package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newTestUpstream(maxNotes int) *Upstream {
	return NewUpstream(Options{MaxNotes: maxNotes, Now: func() time.Time { return fixedNow }})
}

type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// call sends one request to u. headers alternate name, value.
func call(t testing.TB, u http.Handler, method, target, body string, headers ...string) response {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	u.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if ct := w.Header().Get("Content-Type"); ct == "application/json" {
		if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", method, target, res.raw, err)
		}
	}
	return res
}

func noteCount(t testing.TB, u *Upstream) int {
	t.Helper()
	res := call(t, u, "GET", "/v1/admin/stats", "")
	return int(res.body["notes"].(float64))
}

func TestHealth(t *testing.T) {
	res := call(t, newTestUpstream(0), "GET", "/v1/health", "")
	if res.status != 200 || res.raw != `{"status":"ok"}`+"\n" {
		t.Errorf("health = %d %q", res.status, res.raw)
	}
	if res := call(t, newTestUpstream(0), "POST", "/v1/health", "{}"); res.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/health = %d, want 405", res.status)
	}
}

func TestWhoami(t *testing.T) {
	u := newTestUpstream(0)
	res := call(t, u, "GET", "/v1/whoami", "",
		"Gatehouse-User-Id", "u1",
		"gatehouse-roles", "admin", // non-canonical on the wire
		"Gatehouse-Auth-Methods", "pwd",
		"Gatehouse-Auth-Methods", "otp",
		"Authorization", "Bearer secret",
		"Gatehousex", "not a Gatehouse- header",
		"X-Gatehouse-User-Id", "spoof")
	want := map[string]any{
		"Gatehouse-User-Id":      "u1",
		"Gatehouse-Roles":        "admin",
		"Gatehouse-Auth-Methods": "pwd, otp",
	}
	if res.status != 200 || fmt.Sprint(res.body) != fmt.Sprint(want) {
		t.Errorf("whoami = %d %v, want %v", res.status, res.body, want)
	}
	if res := call(t, u, "GET", "/v1/whoami", ""); res.status != 200 || res.raw != "{}\n" {
		t.Errorf("whoami without headers = %d %q, want 200 {}", res.status, res.raw)
	}
}

func TestCreateNote(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		headers   []string
		want      int
		wantNote  map[string]any // checked on 201 (id excluded)
		wantError string         // substring of "error" otherwise
	}{
		{name: "with email header", body: `{"title":"t","body":"b"}`,
			headers: []string{"Gatehouse-User-Id", "u1", "Gatehouse-Email", "ann@example.com"}, want: 201,
			wantNote: map[string]any{"title": "t", "body": "b", "owner_id": "u1", "owner_email": "ann@example.com",
				"internal_flags": map[string]any{"moderation_score": 0.02, "shadow_banned": false}}},
		{name: "default email", body: `{"title":"t","body":"b"}`, headers: []string{"Gatehouse-User-Id", "u2"}, want: 201,
			wantNote: map[string]any{"title": "t", "body": "b", "owner_id": "u2", "owner_email": "u2@users.example",
				"internal_flags": map[string]any{"moderation_score": 0.02, "shadow_banned": false}}},
		{name: "no body field", body: `{"title":"only"}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 201,
			wantNote: map[string]any{"title": "only", "body": "", "owner_id": "u1", "owner_email": "u1@users.example",
				"internal_flags": map[string]any{"moderation_score": 0.02, "shadow_banned": false}}},
		// Naive on purpose: a smuggled owner_id or internal flag is ignored, not
		// rejected — rejecting is the gateway's schema validation.
		{name: "mass assignment ignored", body: `{"title":"t","owner_id":"victim","internal_flags":{"shadow_banned":true}}`,
			headers: []string{"Gatehouse-User-Id", "u1"}, want: 201,
			wantNote: map[string]any{"title": "t", "body": "", "owner_id": "u1", "owner_email": "u1@users.example",
				"internal_flags": map[string]any{"moderation_score": 0.02, "shadow_banned": false}}},
		{name: "missing user header", body: `{"title":"t"}`, want: 401, wantError: "Gatehouse-User-Id"},
		{name: "empty user header", body: `{"title":"t"}`, headers: []string{"Gatehouse-User-Id", ""}, want: 401, wantError: "Gatehouse-User-Id"},
		{name: "bad json", body: `{"title":`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "not json", body: `title=t`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "empty body", body: ``, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "title is a number", body: `{"title":42}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "body is an array", body: `{"title":"t","body":["x"]}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "top level array", body: `[{"title":"t"}]`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "invalid JSON"},
		{name: "null title", body: `{"title":null}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "title is required"},
		{name: "missing title", body: `{"body":"b"}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "title is required"},
		{name: "trailing data", body: `{"title":"t"}{"title":"u"}`, headers: []string{"Gatehouse-User-Id", "u1"}, want: 400, wantError: "trailing"},
		{name: "oversized", body: `{"title":"` + strings.Repeat("a", maxBodyBytes) + `"}`,
			headers: []string{"Gatehouse-User-Id", "u1"}, want: 413, wantError: "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newTestUpstream(0)
			res := call(t, u, "POST", "/v1/notes", c.body, c.headers...)
			if res.status != c.want {
				t.Fatalf("status = %d, want %d (%s)", res.status, c.want, res.raw)
			}
			if c.want != 201 {
				if msg, _ := res.body["error"].(string); !strings.Contains(msg, c.wantError) {
					t.Errorf("error = %q, want it to mention %q", msg, c.wantError)
				}
				if n := noteCount(t, u); n != 0 {
					t.Errorf("%d notes stored after a rejected request", n)
				}
				return
			}
			if res.body["id"] != "1" || res.header.Get("Location") != "/v1/notes/1" {
				t.Errorf("id = %v, Location = %q; want 1 and /v1/notes/1", res.body["id"], res.header.Get("Location"))
			}
			delete(res.body, "id")
			if fmt.Sprint(res.body) != fmt.Sprint(c.wantNote) {
				t.Errorf("note = %v\nwant   %v", res.body, c.wantNote)
			}
		})
	}
}

func TestNotesSequentialAndNaive(t *testing.T) {
	u := newTestUpstream(0)
	for i, owner := range []string{"alice", "bob", "alice"} {
		res := call(t, u, "POST", "/v1/notes", fmt.Sprintf(`{"title":"note %d","body":"by %s"}`, i+1, owner), "Gatehouse-User-Id", owner)
		if res.status != 201 || res.body["id"] != fmt.Sprint(i+1) {
			t.Fatalf("create %d = %d %v", i+1, res.status, res.body)
		}
	}

	// List: only the caller's notes, in order.
	res := call(t, u, "GET", "/v1/notes", "", "Gatehouse-User-Id", "alice")
	notes := res.body["notes"].([]any)
	if res.status != 200 || len(notes) != 2 || notes[0].(map[string]any)["id"] != "1" || notes[1].(map[string]any)["id"] != "3" {
		t.Errorf("alice's list = %d %v", res.status, res.raw)
	}
	if res := call(t, u, "GET", "/v1/notes", "", "Gatehouse-User-Id", "carol"); res.status != 200 || res.raw != `{"notes":[]}`+"\n" {
		t.Errorf("empty list = %d %q, want {\"notes\":[]}", res.status, res.raw)
	}
	if res := call(t, u, "GET", "/v1/notes", ""); res.status != 401 {
		t.Errorf("list without user = %d, want 401", res.status)
	}

	// Get by id: anyone reads anything (broken object-level authorisation on purpose).
	for _, c := range []struct {
		target  string
		headers []string
		want    int
		owner   string
	}{
		{"/v1/notes/2", []string{"Gatehouse-User-Id", "alice"}, 200, "bob"},
		{"/v1/notes/1", nil, 200, "alice"},
		{"/v1/notes/3", []string{"Gatehouse-User-Id", "mallory"}, 200, "alice"},
		{"/v1/notes/4", nil, 404, ""},
		{"/v1/notes/0", nil, 404, ""},
		{"/v1/notes/-1", nil, 404, ""},
		{"/v1/notes/01", nil, 404, ""},
		{"/v1/notes/+1", nil, 404, ""},
		{"/v1/notes/abc", nil, 404, ""},
		{"/v1/notes/99999999999999999999999", nil, 404, ""},
		{"/v1/notes/1%00", nil, 404, ""},
	} {
		res := call(t, u, "GET", c.target, "", c.headers...)
		if res.status != c.want {
			t.Errorf("GET %s = %d, want %d", c.target, res.status, c.want)
			continue
		}
		if c.want == 200 && res.body["owner_id"] != c.owner {
			t.Errorf("GET %s owner = %v, want %s", c.target, res.body["owner_id"], c.owner)
		}
		if c.want == 404 && res.body["error"] != "note not found" {
			t.Errorf("GET %s body = %q", c.target, res.raw)
		}
	}
	if res := call(t, u, "DELETE", "/v1/notes/1", ""); res.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", res.status)
	}
}

func TestSearch(t *testing.T) {
	u := newTestUpstream(0)
	call(t, u, "POST", "/v1/notes", `{"title":"Shopping list","body":"milk, eggs"}`, "Gatehouse-User-Id", "alice")
	call(t, u, "POST", "/v1/notes", `{"title":"Ideas","body":"Buy MILK futures"}`, "Gatehouse-User-Id", "alice")
	call(t, u, "POST", "/v1/notes", `{"title":"milk","body":"bob's"}`, "Gatehouse-User-Id", "bob")

	ids := func(res response) []string {
		var out []string
		for _, n := range res.body["notes"].([]any) {
			out = append(out, n.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"milk", []string{"1", "2"}},
		{"SHOPPING", []string{"1"}},
		{"", []string{"1", "2"}},
		{"nothing", nil},
		{"%", nil},
	} {
		res := call(t, u, "GET", "/v1/notes/search?q="+urlQuery(c.q), "", "Gatehouse-User-Id", "alice")
		if res.status != 200 || !slices.Equal(ids(res), c.want) {
			t.Errorf("search %q = %d %v, want %v", c.q, res.status, res.raw, c.want)
		}
	}

	// The injection leak: a quote breaks the pretend SQL and the error echoes it.
	for _, c := range []struct{ q, near string }{
		{"' OR 1=1 --", `'`},
		{`x" UNION SELECT password_hash FROM users`, `"`},
		{`it's`, `'`},
	} {
		res := call(t, u, "GET", "/v1/notes/search?q="+urlQuery(c.q), "", "Gatehouse-User-Id", "alice")
		want := fmt.Sprintf(`SQLITE_ERROR: near "%s": syntax error in SELECT * FROM notes WHERE title LIKE '%%%s%%'`, c.near, c.q)
		if res.status != 500 || res.body["error"] != want {
			t.Errorf("search %q = %d %q, want 500 %q", c.q, res.status, res.body["error"], want)
		}
	}
	if res := call(t, u, "GET", "/v1/notes/search?q=milk", ""); res.status != 401 {
		t.Errorf("search without user = %d, want 401", res.status)
	}
}

func urlQuery(s string) string {
	r := httptest.NewRequest("GET", "/", nil)
	q := r.URL.Query()
	q.Set("q", s)
	return strings.TrimPrefix(q.Encode(), "q=")
}

func TestUsersAndStats(t *testing.T) {
	u := newTestUpstream(0)
	if res := call(t, u, "GET", "/v1/admin/stats", ""); res.status != 200 || res.raw != `{"notes":0,"users":0}`+"\n" {
		t.Errorf("empty stats = %d %q", res.status, res.raw)
	}
	call(t, u, "GET", "/v1/health", "", "Gatehouse-User-Id", "alice")
	call(t, u, "POST", "/v1/notes", `{"title":"a"}`, "Gatehouse-User-Id", "alice")
	call(t, u, "POST", "/v1/notes", `{"title":"b"}`, "Gatehouse-User-Id", "bob")

	// The data-exposure leak: anyone can read anyone's password hash.
	res := call(t, u, "GET", "/v1/users/bob", "", "Gatehouse-User-Id", "alice")
	want := map[string]any{
		"id": "bob", "email": "bob@users.example",
		"password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZmFrZWhhc2g",
		"created_at":    "2026-03-14T15:09:26Z",
	}
	if res.status != 200 || fmt.Sprint(res.body) != fmt.Sprint(want) {
		t.Errorf("user = %d %v, want %v", res.status, res.body, want)
	}
	for _, target := range []string{"/v1/users/nobody", "/v1/users/bob%2F..", "/v1/users/"} {
		if res := call(t, u, "GET", target, ""); res.status != 404 {
			t.Errorf("GET %s = %d, want 404", target, res.status)
		}
	}
	if res := call(t, u, "GET", "/v1/admin/stats", ""); res.raw != `{"notes":2,"users":2}`+"\n" {
		t.Errorf("stats = %q, want 2 notes and 2 users", res.raw)
	}
}

func TestStoreFull(t *testing.T) {
	u := newTestUpstream(2)
	for i := range 2 {
		if res := call(t, u, "POST", "/v1/notes", `{"title":"t"}`, "Gatehouse-User-Id", "u"); res.status != 201 {
			t.Fatalf("create %d = %d", i, res.status)
		}
	}
	res := call(t, u, "POST", "/v1/notes", `{"title":"t"}`, "Gatehouse-User-Id", "u")
	if res.status != http.StatusInsufficientStorage || res.body["error"] != "note store is full" {
		t.Errorf("create when full = %d %q, want 507", res.status, res.raw)
	}
	if n := noteCount(t, u); n != 2 {
		t.Errorf("notes = %d after a refused create, want 2", n)
	}
	// Users are bounded too: a flood of forged ids cannot grow memory without limit.
	for i := range 10 {
		call(t, u, "GET", "/v1/health", "", "Gatehouse-User-Id", fmt.Sprint("flood-", i))
	}
	if res := call(t, u, "GET", "/v1/admin/stats", ""); res.body["users"].(float64) != 2 {
		t.Errorf("users = %v, want the bound 2", res.body["users"])
	}
}

func TestDefaults(t *testing.T) {
	u := NewUpstream(Options{})
	if u.maxNotes != 10000 || u.now == nil || u.log == nil {
		t.Errorf("defaults: maxNotes=%d now=%v log=%v", u.maxNotes, u.now != nil, u.log != nil)
	}
	before := time.Now().UTC().Add(-time.Second)
	call(t, u, "GET", "/v1/health", "", "Gatehouse-User-Id", "x")
	res := call(t, u, "GET", "/v1/users/x", "")
	created, err := time.Parse(time.RFC3339Nano, res.body["created_at"].(string))
	if err != nil || created.Before(before) {
		t.Errorf("created_at = %v (%v), want about now", res.body["created_at"], err)
	}
}

func TestConcurrent(t *testing.T) {
	u := newTestUpstream(0)
	const workers, each = 8, 50
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		owner := fmt.Sprint("user-", w)
		wg.Go(func() {
			for i := range each {
				res := call(t, u, "POST", "/v1/notes", fmt.Sprintf(`{"title":"n%d"}`, i), "Gatehouse-User-Id", owner)
				if res.status != 201 {
					t.Errorf("create = %d", res.status)
					return
				}
				ids <- res.body["id"].(string)
				call(t, u, "GET", "/v1/notes", "", "Gatehouse-User-Id", owner)
				call(t, u, "GET", "/v1/notes/search?q=n1", "", "Gatehouse-User-Id", owner)
				call(t, u, "GET", "/v1/notes/"+res.body["id"].(string), "")
				call(t, u, "GET", "/v1/users/"+owner, "")
				call(t, u, "GET", "/v1/admin/stats", "")
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("id %s issued twice", id)
		}
		seen[id] = true
	}
	for i := 1; i <= workers*each; i++ {
		if !seen[fmt.Sprint(i)] {
			t.Fatalf("id %d missing: ids are not sequential", i)
		}
	}
	for w := range workers {
		res := call(t, u, "GET", "/v1/notes", "", "Gatehouse-User-Id", fmt.Sprint("user-", w))
		if n := len(res.body["notes"].([]any)); n != each {
			t.Errorf("user-%d has %d notes, want %d", w, n, each)
		}
	}
}

func FuzzCreateNote(f *testing.F) {
	f.Add(`{"title":"t","body":"b"}`)                // valid
	f.Add(`{"title":"t","owner_id":"someone-else"}`) // mass assignment attempt
	f.Add(`{"title":42}`)                            // wrong type
	f.Add(`{"title":"\u0000\ud800"}`)                // NUL and a lone surrogate
	f.Add(`{"title":"t"}garbage`)                    // trailing data
	f.Add(`[`)                                       // truncated
	f.Add(`{"title":"t","title":"u"}`)               // duplicate key
	f.Add(`{"title":{"$ne":null}}`)                  // NoSQL-style operator
	f.Fuzz(func(t *testing.T, body string) {
		u := newTestUpstream(0)
		res := call(t, u, "POST", "/v1/notes", body, "Gatehouse-User-Id", "fuzz")
		n := noteCount(t, u)
		switch res.status {
		case 201:
			if n != 1 || res.body["owner_id"] != "fuzz" || res.body["id"] != "1" {
				t.Fatalf("201 but store has %d notes, note %v", n, res.body)
			}
		case 400, 413:
			if n != 0 {
				t.Fatalf("%d but %d notes stored", res.status, n)
			}
		default:
			t.Fatalf("status %d for %q", res.status, body)
		}
	})
}

func FuzzSearch(f *testing.F) {
	for _, q := range []string{"milk", "", "'", `"`, "' OR 1=1 --", "%_", "\x00", "é", strings.Repeat("a", 300)} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := newTestUpstream(0)
		call(t, u, "POST", "/v1/notes", `{"title":"milk","body":"it is"}`, "Gatehouse-User-Id", "a")
		res := call(t, u, "GET", "/v1/notes/search?q="+urlQuery(q), "", "Gatehouse-User-Id", "a")
		decoded := httptest.NewRequest("GET", "/?q="+urlQuery(q), nil).URL.Query().Get("q")
		wantLeak := strings.ContainsAny(decoded, `'"`)
		if wantLeak && res.status != 500 || !wantLeak && res.status != 200 {
			t.Fatalf("q %q: status %d", q, res.status)
		}
		if res.body == nil {
			t.Fatalf("q %q: non-JSON answer %q", q, res.raw)
		}
	})
}

func BenchmarkGetNote(b *testing.B) {
	u := newTestUpstream(0)
	call(b, u, "POST", "/v1/notes", `{"title":"t","body":"b"}`, "Gatehouse-User-Id", "u")
	r := httptest.NewRequest("GET", "/v1/notes/1", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		u.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
