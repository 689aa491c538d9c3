package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	c := validConfig()
	c.Store = "postgres://gh:dbpass1@db:5432/gh?sslmode=verify-full&sslpassword=keypass2"
	c.Cache = "rediss://:redispass3@cache:6380/0"
	c.KEK = "base64key://c2VjcmV0a2V5NA=="
	c.Services = []Service{{ID: "svc", SecretHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaDU", Permissions: []string{"admin"}}}
	c.Upstreams["api"] = Upstream{URL: "http://u:uppass6@127.0.0.1:9000", Timeout: c.Upstreams["api"].Timeout}
	orig := c.clone()

	r := c.Redacted()
	secrets := []string{"dbpass1", "keypass2", "redispass3", "c2VjcmV0a2V5NA", "aGFzaDU", "uppass6"}
	dump := strings.Join([]string{r.Store, r.Cache, r.KEK, r.Services[0].SecretHash, r.Upstreams["api"].URL}, " ")
	for _, s := range secrets {
		if strings.Contains(dump, s) {
			t.Errorf("Redacted still holds %q: %s", s, dump)
		}
	}
	for _, keep := range []string{"postgres://gh:", "@db:5432/gh", "sslmode=verify-full", "rediss://", "cache:6380", "base64key://", "http://u:"} {
		if !strings.Contains(dump, keep) {
			t.Errorf("Redacted lost the non-secret %q: %s", keep, dump)
		}
	}

	// The copy is deep: changing it leaves the original alone.
	*r.Identity.Password.Blocklist = false
	*r.Audit.Log = false
	r.Tokens.Audience[0] = "changed"
	r.Routes[0].Methods[0] = "DELETE"
	r.Services[0].Permissions[0] = "changed"
	r.Plans["free"] = "1/s"
	if *c.Identity.Password.Blocklist != *orig.Identity.Password.Blocklist || *c.Audit.Log != *orig.Audit.Log ||
		c.Tokens.Audience[0] != orig.Tokens.Audience[0] || c.Routes[0].Methods[0] != orig.Routes[0].Methods[0] ||
		c.Services[0].Permissions[0] != "admin" || c.Plans["free"] != orig.Plans["free"] || c.Store != orig.Store {
		t.Error("Redacted shares memory with the original")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"memory", "memory"},
		{"sqlite:///var/lib/g.db", "sqlite:///var/lib/g.db"},
		{"file:///etc/gatehouse/kek", "file:///etc/gatehouse/kek"},
		{"env://KEK", "env://KEK"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:p@h/db", "postgres://u:" + Mask + "@h/db"},
		{"postgres://h/db?password=p&user=u", "postgres://h/db?password=" + Mask + "&user=u"},
		{"not a url at all: hunter2", Mask},
		{"hunter2", Mask},
		{"postgres://u:p@h:bad/db", Mask},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	c := validConfig()
	c.Store = "postgres://gh:dbpass1@db/gh"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "config", c)
	out := buf.String()
	if strings.Contains(out, "dbpass1") {
		t.Fatalf("log line leaks the store password: %s", out)
	}
	if !strings.Contains(out, `"issuer":"https://api.example.com"`) || !strings.Contains(out, Mask) {
		t.Fatalf("log line lacks the summary: %s", out)
	}
}

func TestServiceLogValueMasksHash(t *testing.T) {
	var buf bytes.Buffer
	s := Service{ID: "ops", SecretHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaDU", Permissions: []string{"admin"}}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("service", "svc", s)
	if out := buf.String(); strings.Contains(out, "aGFzaDU") || !strings.Contains(out, `"id":"ops"`) {
		t.Fatalf("got %s", out)
	}
}
