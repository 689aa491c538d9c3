package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	_ "github.com/jackc/pgx/v5/stdlib" // the benchmark's own schema on PostgreSQL
)

// The identity benchmarks drive the real handler over TLS with parallel
// clients and the DEFAULT argon2id cost. Throttling must not shape the
// numbers: the per-IP failure counter is raised (every client is 127.0.0.1 and
// each sign-in counts before it is forgiven), and each client signs in to its
// own account so the per-account counter never sees concurrency.
//
//	go test -run '^$' -bench 'Signup|Login|Refresh' -benchtime 3s -count 3 ./cmd/gatehouse
const benchYAML = "identity:\n  lockout: {ip_failures: 1000000}\n  password: {hash_queue_timeout: 60s}\n"

// benchClients is how many clients run at once per GOMAXPROCS.
const benchClients = 4

// rawPost sends a request without testing.TB, so it may run in RunParallel's
// goroutines (which must not call Fatal).
func rawPost(c *http.Client, u, contentType, body string) (int, []byte, error) {
	resp, err := c.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "req/s")
	}
}

// BenchmarkSignup: POST /auth/v1/signup — an argon2id hash, a user, a
// session and a token pair per request.
func BenchmarkSignup(b *testing.B) {
	s := startLiveApp(b, benchYAML, liveOptions{quiet: true})
	u := s.issuer + "/auth/v1/signup"
	var n atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Sprintf(`{"email":"bench%d@example.com","password":%q}`, n.Add(1), pw)
			st, rb, err := rawPost(s.c, u, jsonType, body)
			if err != nil || st != http.StatusCreated {
				b.Errorf("signup: %d %v %s", st, err, rb)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b)
}

// BenchmarkLogin: the password grant — one argon2id verification, a session
// and a token pair per request.
func BenchmarkLogin(b *testing.B) {
	s := startLiveApp(b, benchYAML, liveOptions{quiet: true})
	clients := benchClients * runtime.GOMAXPROCS(0)
	accounts := make([]string, clients)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("login%d@example.com", i)
		wantStatus(b, s.signup(b, accounts[i], pw), http.StatusCreated)
	}
	u := s.issuer + "/auth/v1/token"
	var next atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := form("grant_type", "password", "username", accounts[int(next.Add(1)-1)%clients], "password", pw)
		for pb.Next() {
			st, rb, err := rawPost(s.c, u, formType, body)
			if err != nil || st != http.StatusOK {
				b.Errorf("login: %d %v %s", st, err, rb)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b)
}

// BenchmarkRefresh: the refresh_token grant — a full rotation (look-up,
// conditional update, new token row, sealed successor) and a new access token
// per request; each client rotates its own family.
func BenchmarkRefresh(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRefresh(b, liveOptions{quiet: true}) })
	b.Run("postgres", func(b *testing.B) {
		base := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL")
		if base == "" {
			b.Skip("GATEHOUSE_TEST_POSTGRES_URL is not set: PostgreSQL refresh benchmark not run")
		}
		storeURL := freshPostgresSchema(b, base)
		benchRefresh(b, liveOptions{quiet: true, mutate: func(c *config.Config) { c.Store = storeURL }})
	})
}

func benchRefresh(b *testing.B, o liveOptions) {
	s := startLiveApp(b, benchYAML, o)
	r := s.signup(b, "refresh@example.com", pw)
	wantStatus(b, r, http.StatusCreated)
	uid := r.str(b, "user_id")
	// One family per client, opened directly (no password hashing in setup).
	clients := benchClients * runtime.GOMAXPROCS(0)
	tokens := make([]string, clients)
	for i := range tokens {
		_, rt, err := s.app.families.Start(context.Background(), token.Login{UserID: uid, AMR: []string{"pwd"}})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = rt
	}
	u := s.issuer + "/auth/v1/token"
	var next atomic.Int64
	b.SetParallelism(benchClients)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rt := tokens[int(next.Add(1)-1)%clients]
		for pb.Next() {
			st, rb, err := rawPost(s.c, u, formType, form("grant_type", "refresh_token", "refresh_token", rt))
			if err != nil || st != http.StatusOK {
				b.Errorf("refresh: %d %v %s", st, err, rb)
				return
			}
			var resp struct {
				RefreshToken string `json:"refresh_token"`
			}
			if err := json.Unmarshal(rb, &resp); err != nil || resp.RefreshToken == "" {
				b.Errorf("refresh response: %v %s", err, rb)
				return
			}
			rt = resp.RefreshToken
		}
	})
	b.StopTimer()
	reportRate(b)
}

// freshPostgresSchema creates a schema of its own for one benchmark run and
// returns a store URL whose search_path selects it; the schema is dropped when
// the benchmark ends (after the server has stopped: cleanups run in reverse).
func freshPostgresSchema(b *testing.B, base string) string {
	b.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		b.Fatal(err)
	}
	schema := "gh_bench_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		b.Fatalf("create schema: %v", err)
	}
	b.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
