package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestDemoProtection drives the protected demo through the gateway against the
// naive upstream: leaks closed, injection blocked with an audit event, mass
// assignment refused, benign input untouched.
func TestDemoProtection(t *testing.T) {
	base, dir := startDemo(t, false)
	c := (&testEnv{ca: filepath.Join(dir, "ca.pem")}).client(t)
	r := do(t, c, "POST", base+"/auth/v1/signup", jsonType, `{"email":"ada@example.com","password":"`+pw+`"}`)
	wantStatus(t, r, http.StatusCreated)
	tok, uid := r.str(t, "access_token"), r.str(t, "user_id")
	auth := []string{"Authorization", "Bearer " + tok}

	// Benign notes (apostrophes, markdown, URLs, unicode) pass untouched.
	benign := []string{
		`{"title":"O'Brien's list","body":"- milk\n- eggs\n\nSee https://example.com/a?b=c"}`,
		`{"title":"Café ☕","body":"Meeting at 10:30; bring the \"Q3\" numbers & notes"}`,
		`{"title":"SELECT a topic","body":"Union of ideas: where we drop old plans"}`,
	}
	var firstID string
	for _, b := range benign {
		r := do(t, c, "POST", base+"/v1/notes", jsonType, b, auth...)
		wantStatus(t, r, http.StatusCreated)
		if firstID == "" {
			firstID = r.str(t, "id")
		}
		if strings.Contains(string(r.body), "owner_email") || strings.Contains(string(r.body), "internal_flags") {
			t.Fatalf("create response leaks: %s", r.body)
		}
	}
	// Leaks closed on read.
	r = do(t, c, "GET", base+"/v1/notes/"+firstID, "", "", auth...)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), "owner_email") || strings.Contains(string(r.body), "internal_flags") || r.str(t, "title") != "O'Brien's list" {
		t.Fatalf("note: %s", r.body)
	}
	r = do(t, c, "GET", base+"/v1/notes", "", "", auth...)
	if strings.Contains(string(r.body), "owner_email") || strings.Contains(string(r.body), "internal_flags") {
		t.Fatalf("note list leaks: %s", r.body)
	}
	r = do(t, c, "GET", base+"/v1/users/"+uid, "", "", auth...)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.body), "password_hash") || strings.Contains(string(r.body), "$argon2") {
		t.Fatalf("profile leaks a password hash: %s", r.body)
	}
	// Mass assignment refused.
	r = do(t, c, "POST", base+"/v1/notes", jsonType, `{"title":"x","body":"y","role":"admin"}`, auth...)
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "role") {
		t.Fatalf("400 does not name the field: %s", r.body)
	}
	// The quote injection is blocked by the WAF, and recorded.
	r = do(t, c, "GET", base+"/v1/notes/search?q="+url.QueryEscape("' OR '1'='1"), "", "", auth...)
	wantStatus(t, r, http.StatusForbidden)
	if strings.Contains(string(r.body), "SQLITE") {
		t.Fatalf("the database error leaked: %s", r.body)
	}
	// A harmless search still works.
	r = do(t, c, "GET", base+"/v1/notes/search?q=milk", "", "", auth...)
	wantStatus(t, r, http.StatusOK)

	cfg, err := loadConfig(filepath.Join(dir, demoConfigName), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, slog.New(slog.DiscardHandler), func(string) string { return "" }, appOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	events, err := a.db.ListEvents(context.Background(), store.EventFilter{Type: audit.RequestBlocked})
	if err != nil {
		t.Fatal(err)
	}
	var waf, schema bool
	for _, e := range events {
		waf = waf || strings.Contains(e.Detail["kinds"], "waf") && e.Detail["rule_ids"] != ""
		schema = schema || strings.Contains(e.Detail["kinds"], "unknown_property")
	}
	if !waf || !schema {
		t.Fatalf("audit events: waf=%v schema=%v in %+v", waf, schema, events)
	}
}
