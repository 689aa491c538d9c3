package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// TestTransitAdminAPI drives the transit API over the admin listener's HTTPS
// with service credentials.
func TestTransitAdminAPI(t *testing.T) {
	e, admin := atRestEnv(t, "")
	s := startServer(t, e, atRestGetenv)
	base := "https://" + admin + "/admin/v1/transit/"
	notes := basicAuth("notes-backend", atRestGetenv(atRestTransitSecret))

	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no credentials", "", 401},
		{"wrong secret", basicAuth("notes-backend", "nope"), 401},
		{"unknown service", basicAuth("ghost", atRestGetenv(atRestTransitSecret)), 401},
		{"bearer token", "Bearer abc", 401},
		{"introspect-only service", basicAuth("introspector", atRestGetenv(atRestIntroSecret)), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			r := do(t, s.c, "POST", base+"keys/denied", jsonType, "", hdr...)
			wantStatus(t, r, tc.status)
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
				t.Fatalf("challenge %q", r.header.Get("WWW-Authenticate"))
			}
			if r.header.Get("X-Request-Id") == "" || r.str(t, "request_id") != r.header.Get("X-Request-Id") {
				t.Fatalf("request id: %q vs %s", r.header.Get("X-Request-Id"), r.body)
			}
		})
	}

	wantStatus(t, do(t, s.c, "POST", base+"keys/profiles", jsonType, "", "Authorization", notes), 201)
	pt := base64.StdEncoding.EncodeToString([]byte("date of birth 1970-01-01"))
	ctx := base64.StdEncoding.EncodeToString([]byte("profile/42"))
	r := do(t, s.c, "POST", base+"encrypt/profiles", jsonType, `{"plaintext":"`+pt+`","context":"`+ctx+`"}`, "Authorization", notes)
	wantStatus(t, r, 200)
	v1 := r.str(t, "ciphertext")
	wantStatus(t, do(t, s.c, "POST", base+"keys/profiles/rotate", jsonType, "", "Authorization", notes), 200)
	r = do(t, s.c, "POST", base+"rewrap/profiles", jsonType, `{"batch_input":[{"ciphertext":"`+v1+`","context":"`+ctx+`"},{"ciphertext":"`+v1+`"}]}`, "Authorization", notes)
	wantStatus(t, r, 200)
	var batch struct {
		Results []struct {
			Ciphertext string `json:"ciphertext"`
			Error      string `json:"error"`
		} `json:"batch_results"`
	}
	if err := json.Unmarshal(r.body, &batch); err != nil || len(batch.Results) != 2 ||
		!strings.HasPrefix(batch.Results[0].Ciphertext, "gh:v2:") || batch.Results[1].Error == "" {
		t.Fatalf("batch rewrap: %s", r.body)
	}
	wantStatus(t, do(t, s.c, "POST", base+"keys/profiles/config", jsonType, `{"min_decryption_version":2}`, "Authorization", notes), 200)
	wantStatus(t, do(t, s.c, "POST", base+"decrypt/profiles", jsonType, `{"ciphertext":"`+v1+`","context":"`+ctx+`"}`, "Authorization", notes), 400)
	r = do(t, s.c, "POST", base+"decrypt/profiles", jsonType, `{"ciphertext":"`+batch.Results[0].Ciphertext+`","context":"`+ctx+`"}`, "Authorization", notes)
	wantStatus(t, r, 200)
	if r.str(t, "plaintext") != pt {
		t.Fatalf("decrypt: %s", r.body)
	}
	r = do(t, s.c, "GET", base+"keys/profiles", "", "", "Authorization", notes)
	wantStatus(t, r, 200)
	if strings.Contains(string(r.body), "sealed") || !strings.Contains(string(r.body), `"min_decryption_version":2`) {
		t.Fatalf("key info: %s", r.body)
	}
	s.stop(t)

	a := openTestApp(t, e.cfg)
	evs, err := a.db.ListEvents(t.Context(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		seen[ev.Type]++
		if strings.HasPrefix(ev.Type, "transit_") && ev.Detail["service"] != "notes-backend" {
			t.Fatalf("transit event without its caller: %+v", ev)
		}
		blob, _ := json.Marshal(ev)
		if strings.Contains(string(blob), pt) || strings.Contains(string(blob), "1970-01-01") || strings.Contains(string(blob), ctx) {
			t.Fatalf("event carries the plaintext or context: %s", blob)
		}
	}
	for _, k := range []string{"transit_key_created", "transit_encrypt", "transit_rewrap", "transit_decrypt", "transit_key_rotated", "transit_key_configured", "service_auth_failed"} {
		if seen[k] == 0 {
			t.Errorf("no %s event: %v", k, seen)
		}
	}
}

// BenchmarkTransitEncryptHTTPS measures transit encrypt requests per second
// through the real server: HTTPS on the admin listener, service credentials
// (secret_env), every call audited — to the SQLite store and the log (the
// default), or to the log only, which shows what the per-call audit row costs.
func BenchmarkTransitEncryptHTTPS(b *testing.B) {
	b.Run("audit=store", func(b *testing.B) { benchTransit(b, "") })
	b.Run("audit=log", func(b *testing.B) { benchTransit(b, "audit:\n  store: false\n") })
}

func benchTransit(b *testing.B, extra string) {
	e, admin := atRestEnv(b, "", extra)
	s := startServerB(b, e)
	base := "https://" + admin + "/admin/v1/transit/"
	notes := basicAuth("notes-backend", atRestGetenv(atRestTransitSecret))
	wantStatus(b, do(b, s.c, "POST", base+"keys/bench", jsonType, "", "Authorization", notes), 201)
	body := `{"plaintext":"` + base64.StdEncoding.EncodeToString([]byte("a 32-byte field of the backend!!")) + `"}`
	var failed atomic.Int64
	b.SetParallelism(8)
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", base+"encrypt/bench", strings.NewReader(body))
			req.Header.Set("Authorization", notes)
			req.Header.Set("Content-Type", jsonType)
			resp, err := s.c.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
			resp.Body.Close()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	s.cancel()
	<-s.done
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
}

// startServerB is startServer for benchmarks: `gatehouse serve` through run(),
// ready once /readyz answers.
func startServerB(b *testing.B, e *testEnv) *server {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{testEnv: e, c: e.client(b), stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, []string{"gatehouse", "serve", "--config", e.cfg}, atRestGetenv, strings.NewReader(""), s.stdout, io.Discard)
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := s.c.Get(e.issuer + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			cancel()
			b.Fatal("server not ready")
		}
	}
}
