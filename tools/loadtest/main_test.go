package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// TestGatehouseConfigLoads checks each generated config the way `gatehouse
// serve` does (validation plus compiling the CEL rule), without starting it.
func TestGatehouseConfigLoads(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.EnsureDevCA(filepath.Join(dir, "ca"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.GenerateKEKFile(filepath.Join(dir, "kek.key")); err != nil {
		t.Fatal(err)
	}
	env, err := policy.NewEnv(policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cache  string
		auth   bool
		access string
	}{
		{"(b) public", "memory", false, "public"},
		{"(c) auth, memory", "memory", true, "authenticated"},
		{"(d) auth, redis", "redis://127.0.0.1:6379/0", true, "authenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "gatehouse.yaml")
			y := gatehouseConfig("127.0.0.1:18443", dir, "127.0.0.1:19000", tt.cache, ca, tt.auth)
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.LoadWith(path, func(string) string { return "" }, policy.Check(env))
			if err != nil {
				t.Fatalf("config does not load: %v\n%s", err, y)
			}
			if cfg.Cache != tt.cache || cfg.Limits.PerIP != "" || cfg.Limits.Global != "" || len(cfg.Routes) != 1 {
				t.Fatalf("cache %q, per_ip %q, global %q, %d routes", cfg.Cache, cfg.Limits.PerIP, cfg.Limits.Global, len(cfg.Routes))
			}
			r := cfg.Routes[0]
			if tt.auth != (r.Allow != "" && len(r.RateLimits) == 1) || (tt.access == "public") != (r.Access == "public") {
				t.Fatalf("route %+v does not match the configuration", r)
			}
		})
	}
}

func TestParseCompare(t *testing.T) {
	tests := []struct {
		name string
		args []string
		err  string // "" means valid
	}{
		{"defaults", nil, ""},
		{"subset", []string{"--configs", "a,c", "--runs", "2", "--duration", "3s"}, ""},
		{"without a", []string{"--configs", "b,c"}, "must include a"},
		{"unknown config", []string{"--configs", "a,z"}, "unknown configuration"},
		{"empty config", []string{"--configs", ""}, "unknown configuration"},
		{"zero conns", []string{"--conns", "0"}, "--conns"},
		{"too many conns", []string{"--conns", "100000"}, "--conns"},
		{"unbounded duration", []string{"--duration", "0s"}, "--duration"},
		{"hour-long run", []string{"--duration", "1h"}, "--duration"},
		{"negative open duration", []string{"--open-duration", "-1s"}, "--open-duration"},
		{"rate above peak", []string{"--rate-fraction", "1.5"}, "--rate-fraction"},
		{"no request cap", []string{"--max-requests", "0"}, "--max-requests"},
		{"too many runs", []string{"--runs", "50"}, "--runs"},
		{"remote redis", []string{"--redis", "redis://10.0.0.5:6379/0"}, "loopback"},
		{"public redis host", []string{"--redis", "redis://redis.example.com:6379/0"}, "loopback"},
		{"not redis", []string{"--redis", "http://127.0.0.1:6379"}, "want redis://"},
		{"stray argument", []string{"extra"}, "unexpected"},
		{"unknown flag", []string{"--nope"}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCompare(tt.args, io.Discard)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want one saying %q", err, tt.err)
			}
		})
	}
}

func TestRunModes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"unknown mode", []string{"nope"}, "unknown mode"},
		{"upstream on a public address", []string{"upstream", "--listen", "0.0.0.0:0"}, "loopback"},
		{"upstream on a private address", []string{"upstream", "--listen", "10.1.2.3:80"}, "loopback"},
		{"bare without upstream", []string{"bare"}, "--upstream"},
		{"bare with a non-http upstream", []string{"bare", "--upstream", "ftp://127.0.0.1:1"}, "--upstream"},
		{"bare without a certificate", []string{"bare", "--upstream", "http://127.0.0.1:1"}, "bare:"},
		{"help", []string{"upstream", "-h"}, flag.ErrHelp.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(ctx, tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want one saying %q", err, tt.err)
			}
		})
	}
}

// TestUpstreamServesUntilCancelled runs the upstream mode in process: it
// announces its address, answers, and returns when its context ends.
func TestUpstreamServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWatcher{w: io.Discard, prefix: "listening ", found: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"upstream", "--listen", "127.0.0.1:0"}, out, io.Discard) }()
	addr := <-out.found
	resp, err := http.Get("http://" + addr + "/v1/anything")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != upstreamBody || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("answer %q, %v", b, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLineWatcher(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string // "" means no announcement
	}{
		{"one write", []string{"serving https://127.0.0.1:8443\n"}, "127.0.0.1:8443"},
		{"split across writes", []string{"serv", "ing https://127.0.", "0.1:1\nmore\n"}, "127.0.0.1:1"},
		{"after other lines", []string{"{\"level\":\"INFO\"}\nserving https://127.0.0.1:2\n"}, "127.0.0.1:2"},
		{"no newline yet", []string{"serving https://127.0.0.1:3"}, ""},
		{"prefix mid-line", []string{"not serving https://127.0.0.1:4\n"}, ""},
		{"huge line", []string{strings.Repeat("x", 100<<10) + "\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			l := &lineWatcher{w: &log, prefix: "serving https://", found: make(chan string, 1)}
			for _, w := range tt.writes {
				if _, err := l.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			var got string
			select {
			case got = <-l.found:
			default:
			}
			if got != tt.want || log.String() != strings.Join(tt.writes, "") {
				t.Fatalf("announced %q (want %q); log kept %d bytes", got, tt.want, log.Len())
			}
		})
	}
}

func TestCheckRedisURL(t *testing.T) {
	for _, s := range []string{"redis://127.0.0.1:6379/0", "redis://localhost/3", "redis://[::1]:6379/0", "redis://:pw@127.0.0.1:6379/1"} {
		if err := checkRedisURL(s); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range []string{"", "redis://", "redis://192.168.0.2:6379", "rediss://127.0.0.1:6379", "redis://127.0.0.1.evil.example:6379", "::"} {
		if err := checkRedisURL(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if msg := redisReachable("redis://127.0.0.1:1/0"); msg == "" {
		t.Error("a closed port counted as reachable")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if got := median(nil); got == got {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestReadRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, rest string
		closeAfter      bool
		wantErr         bool
	}{
		{name: "get", raw: "GET /v1/bench HTTP/1.1\r\nHost: x\r\nGatehouse-User-Id: u1\r\n\r\nNEXT", rest: "NEXT"},
		{name: "post with length", raw: "POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\nbodyNEXT", rest: "NEXT"},
		{name: "chunked", raw: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\nNEXT", rest: "NEXT"},
		{name: "close", raw: "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", closeAfter: true},
		{name: "http/1.0", raw: "GET / HTTP/1.0\r\n\r\n", closeAfter: true},
		{name: "not http", raw: "hello\r\n\r\n", wantErr: true},
		{name: "bad length", raw: "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			br := bufio.NewReader(strings.NewReader(tc.raw))
			closeAfter, err := readRequest(br)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			rest, _ := io.ReadAll(br)
			if closeAfter != tc.closeAfter || string(rest) != tc.rest {
				t.Errorf("close=%v rest %q, want close=%v rest %q", closeAfter, rest, tc.closeAfter, tc.rest)
			}
		})
	}
}
