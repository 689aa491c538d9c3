package policy

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// benchInput is a typical proxied request: a path parameter, a query, a
// handful of headers and a verified token.
func benchInput() *Input {
	return &Input{
		Method:     "GET",
		PathParams: map[string]string{"id": "u1"},
		Query:      url.Values{"limit": {"20"}},
		Header: http.Header{
			"Accept":        {"application/json"},
			"Authorization": {"Bearer x"},
			"User-Agent":    {"app/1.0"},
			"X-Request-Id":  {"r1"},
		},
		Claims: claims(withRoles("user")),
		Now:    now,
	}
}

func BenchmarkDecideNoRule(b *testing.B) {
	rule := &Rule{Access: Authenticated, Roles: []string{"admin", "user"}, Scopes: []string{"api"}}
	in := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := rule.Decide(ctx, in); !d.Allow {
			b.Fatal(d)
		}
	}
}

func BenchmarkDecideWithCEL(b *testing.B) {
	env := newEnv(b)
	rule := &Rule{Access: Authenticated, Allow: mustRequest(b, env, `request.path.id == token.sub || "admin" in token.roles`)}
	in := benchInput()
	b.Run("background", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if d := rule.Decide(ctx, in); !d.Allow {
				b.Fatal(d)
			}
		}
	})
	// A request context can end, so evaluation watches it.
	b.Run("cancellable", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if d := rule.Decide(ctx, in); !d.Allow {
				b.Fatal(d)
			}
		}
	})
	// The right-hand side runs too: the list claim is converted.
	b.Run("admin", func(b *testing.B) {
		in := benchInput()
		in.PathParams = map[string]string{"id": "u2"}
		in.Claims = claims(withRoles("user", "admin"))
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if d := rule.Decide(ctx, in); !d.Allow {
				b.Fatal(d)
			}
		}
	})
}

func BenchmarkDecideResponse(b *testing.B) {
	env := newEnv(b)
	rule := &Rule{Access: Authenticated, ResponseAllow: mustResponse(b, env, `response.body.owner_id == token.sub`)}
	body := decodeJSON(b, `{"id":"n1","owner_id":"u1","title":"t","body":"b","created":1700000000,
		"updated":1700000001,"tags":["a","b"],"shared":false,"version":3,"meta":{"k":"v"}}`)
	in := benchInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := rule.DecideResponse(ctx, in, 200, body); !d.Allow {
			b.Fatal(d)
		}
	}
}
