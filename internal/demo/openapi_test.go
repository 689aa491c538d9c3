package demo

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type obj = map[string]any

func loadSpec(t *testing.T) obj {
	t.Helper()
	var doc obj
	if err := yaml.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// dig follows keys through nested maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(obj)
		if !ok {
			t.Fatalf("at %q: %T is not an object", k, v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("missing key %q (have %v)", k, sortedKeys(m))
		}
	}
	return v
}

func sortedKeys(m obj) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadSpec(t)
	if v := dig(t, doc, "openapi"); v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}

	schemas := dig(t, doc, "components", "schemas").(obj)
	closed := func(name string, props ...string) {
		t.Helper()
		s := schemas[name].(obj)
		if s["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties = %v, want false", name, s["additionalProperties"])
		}
		if got := sortedKeys(s["properties"].(obj)); !slices.Equal(got, props) {
			t.Errorf("%s properties = %v, want %v", name, got, props)
		}
	}
	closed("Note", "body", "id", "owner_id", "title")
	closed("NoteCreate", "body", "title")
	closed("User", "created_at", "email", "id")
	closed("Stats", "notes", "users")
	closed("NoteList", "notes")
	closed("Error", "error")

	for _, c := range []struct {
		schema, prop string
		maxLength    int
	}{{"NoteCreate", "title", 200}, {"NoteCreate", "body", 10000}, {"Note", "title", 200}, {"Note", "body", 10000}} {
		p := dig(t, schemas, c.schema, "properties", c.prop).(obj)
		if p["type"] != "string" || p["maxLength"] != c.maxLength {
			t.Errorf("%s.%s = %v, want string maxLength %d", c.schema, c.prop, p, c.maxLength)
		}
	}
	for _, p := range []string{"id", "owner_id"} {
		if dig(t, schemas, "Note", "properties", p, "readOnly") != true {
			t.Errorf("Note.%s is not readOnly", p)
		}
	}
	if got := dig(t, schemas, "NoteCreate", "required"); !slices.Equal(toStrings(got), []string{"title"}) {
		t.Errorf("NoteCreate required = %v", got)
	}
	// Nothing in the document may mention the fields that must not leave the upstream.
	for _, secret := range []string{"owner_email", "internal_flags", "password_hash", "moderation_score", "shadow_banned"} {
		if strings.Contains(string(OpenAPI()), secret) {
			t.Errorf("document mentions %q", secret)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestOpenAPICoversEveryRoute checks that the document and the handler describe the
// same API: every documented operation is served, and every served route is documented.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	served := []string{
		"GET /v1/health", "GET /v1/whoami", "POST /v1/notes", "GET /v1/notes",
		"GET /v1/notes/search", "GET /v1/notes/{id}", "GET /v1/users/{id}", "GET /v1/admin/stats",
	}
	var documented []string
	for path, item := range dig(t, loadSpec(t), "paths").(obj) {
		for method := range item.(obj) {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(documented)
	want := slices.Clone(served)
	sort.Strings(want)
	if !slices.Equal(documented, want) {
		t.Errorf("documented %v\nserved     %v", documented, want)
	}
	u := newTestUpstream(0)
	call(t, u, "POST", "/v1/notes", `{"title":"t"}`, "Gatehouse-User-Id", "1")
	for _, route := range served {
		method, path, _ := strings.Cut(route, " ")
		path = strings.ReplaceAll(path, "{id}", "1")
		body := ""
		if method == "POST" {
			body = `{"title":"t"}`
		}
		res := call(t, u, method, path, body, "Gatehouse-User-Id", "1")
		if res.status == http.StatusNotFound || res.status == http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", route, res.status)
		}
	}
}

// TestOpenAPINoteIsFilteredUpstreamNote checks that the safe Note schema is exactly the
// upstream's note minus the internal fields, so a response filter that drops unknown
// properties leaves a valid document and loses nothing legitimate.
func TestOpenAPINoteIsFilteredUpstreamNote(t *testing.T) {
	raw, err := json.Marshal(Note{})
	if err != nil {
		t.Fatal(err)
	}
	var note obj
	json.Unmarshal(raw, &note)
	delete(note, "owner_email")
	delete(note, "internal_flags")
	props := dig(t, loadSpec(t), "components", "schemas", "Note", "properties").(obj)
	if !slices.Equal(sortedKeys(note), sortedKeys(props)) {
		t.Errorf("upstream note minus internals = %v, schema = %v", sortedKeys(note), sortedKeys(props))
	}

	raw, _ = json.Marshal(User{})
	var user obj
	json.Unmarshal(raw, &user)
	delete(user, "password_hash")
	props = dig(t, loadSpec(t), "components", "schemas", "User", "properties").(obj)
	if !slices.Equal(sortedKeys(user), sortedKeys(props)) {
		t.Errorf("upstream user minus hash = %v, schema = %v", sortedKeys(user), sortedKeys(props))
	}
}

func TestOpenAPIReturnsCopy(t *testing.T) {
	a := OpenAPI()
	a[0] = 'X'
	if OpenAPI()[0] == 'X' {
		t.Error("OpenAPI returns the shared embedded slice")
	}
}
