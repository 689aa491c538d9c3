package main

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
)

// gwCluster is what replicas share: a dev CA, a KEK, a store and a cache
// (Redis or memory), and one issuer. Each replica gets its own listener.
type gwCluster struct {
	dir, kek string
	ca       tlsutil.DevCA
	store    string
	cache    string // "memory" or a redis:// URL
	issuer   string
	upstream string
	// clientIP is a loopback address of this test's own, so the per-IP keys it
	// makes in a Redis shared with other tests are its own too.
	clientIP net.IP
}

func newGWCluster(t *testing.T, cache string) *gwCluster {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsutil.EnsureDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(dir, "kek.key")
	if err := keys.GenerateKEKFile(kek); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user":%q}`+"\n", r.Header.Get("Gatehouse-User-Id"))
	}))
	t.Cleanup(up.Close)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	c := &gwCluster{dir: dir, kek: kek, ca: ca, cache: cache, upstream: up.URL,
		issuer:   "https://gatehouse-cluster.test",
		clientIP: net.IPv4(127, rnd[0]|1, rnd[1], rnd[2]|1)}
	if base := os.Getenv("GATEHOUSE_TEST_POSTGRES_URL"); base != "" {
		c.store = gwPostgresSchema(t, base)
		t.Logf("store: PostgreSQL (fresh schema)")
	} else {
		c.store = "sqlite://" + filepath.Join(dir, "shared.db")
		t.Logf("store: one SQLite file for every replica (GATEHOUSE_TEST_POSTGRES_URL is not set)")
	}
	return c
}

// gwPostgresSchema creates a schema for one test and returns a store URL whose
// search_path selects it; the schema is dropped after the servers stop.
func gwPostgresSchema(t *testing.T, base string) string {
	t.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	schema := "gh_gw_" + hex.EncodeToString(rnd[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// gwReplica is one running `gatehouse serve` of a cluster.
type gwReplica struct {
	*server
	admin string // admin listener address, "" when disabled
}

// replica writes a config for one more replica and starts it. routes is the
// YAML of the routes: section; limits, when not empty, replaces the generous
// default limits; withAdmin turns the admin listener on.
func (c *gwCluster) replica(t *testing.T, name, routes, limits string, withAdmin bool) *gwReplica {
	t.Helper()
	addr := freePort(t)
	admin, adminYAML := "", "admin:\n  disabled: true\n"
	if withAdmin {
		admin = freePort(t)
		adminYAML = "admin:\n  listen: " + admin + "\n"
	}
	if limits == "" {
		limits = "limits:\n  per_ip: 100000/s\n  auth: {signup: 100000/h, token: 100000/m}\n"
	}
	cfg := fmt.Sprintf(`issuer: %s
store: %s
cache: %s
kek: file://%s
server:
  listen: %s
  tls: {cert_file: %s, key_file: %s}
  shutdown_timeout: 10s
%stokens:
  audience: [gatehouse-test]
identity:
  default_plan: free
plans:
  free: 6/h
upstreams:
  app: {url: %s, timeout: 10s}
%s%s`, c.issuer, c.store, c.cache, c.kek, addr, c.ca.CertFile, c.ca.KeyFile, adminYAML, c.upstream, limits, routes)
	path := filepath.Join(c.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &testEnv{dir: c.dir, cfg: path, addr: addr, issuer: "https://" + addr, ca: c.ca.CAFile}
	s := startServer(t, e, nil)
	// Requests from this test's own loopback address (see clientIP).
	s.c = c.client(t)
	return &gwReplica{server: s, admin: admin}
}

func (c *gwCluster) client(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(c.ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: c.clientIP}, Timeout: 5 * time.Second}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DialContext: d.DialContext, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// clusterRedis returns the Redis URL the cluster tests use: the machine's
// Redis when GATEHOUSE_TEST_REDIS_URL is set (keys stay apart by the test's
// own client IP and fresh user ids), else a miniredis of the test's own.
func clusterRedis(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("GATEHOUSE_TEST_REDIS_URL"); u != "" {
		t.Logf("cache: the Redis at GATEHOUSE_TEST_REDIS_URL")
		return u
	}
	t.Logf("cache: miniredis (GATEHOUSE_TEST_REDIS_URL is not set)")
	m := miniredis.RunT(t)
	return "redis://" + m.Addr()
}

const clusterRoutes = `routes:
  - {name: echo, methods: [GET], path: /v1/echo, upstream: app}
  - {name: limited, methods: [GET], path: /v1/limited, upstream: app, rate_limits: ["10/h per user"]}
  - {name: quota, methods: [GET], path: /v1/quota, upstream: app, quota: true}
`

// TestClusterSharedLimits: two replicas on one store and one Redis enforce one
// limit between them, not one each; then a logout at one replica is refused at
// the other within a second (Redis pub/sub).
func TestClusterSharedLimits(t *testing.T) {
	c := newGWCluster(t, clusterRedis(t))
	a := c.replica(t, "a", clusterRoutes, "", false)
	b := c.replica(t, "b", clusterRoutes, "", false)

	r := a.signup(t, "dora@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	tok := r.str(t, "access_token")

	admitted := func(path string, n int) (total int, per [2]int) {
		for i := range n {
			s := []*gwReplica{a, b}[i%2]
			r := s.get(t, path, tok)
			switch r.status {
			case http.StatusOK:
				total++
				per[i%2]++
			case http.StatusTooManyRequests:
				if r.header.Get("Retry-After") == "" {
					t.Fatalf("%s: 429 without Retry-After", path)
				}
			default:
				t.Fatalf("%s at replica %d: %d %s", path, i%2, r.status, r.body)
			}
		}
		return total, per
	}
	// A per-user GCRA limit of 10/h.
	if total, per := admitted("/v1/limited", 24); total != 10 || per[0] == 0 || per[1] == 0 {
		t.Errorf("per-user limit 10/h: %d admitted across the replicas (%v), want exactly 10 with both serving", total, per)
	}
	// The plan quota: free is 6/h, a fixed hourly window.
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < 10*time.Second {
		t.Logf("waiting %v for the next hourly window", left)
		time.Sleep(left + 100*time.Millisecond)
	}
	if total, per := admitted("/v1/quota", 14); total != 6 || per[0] == 0 || per[1] == 0 {
		t.Errorf("plan quota 6/h: %d admitted across the replicas (%v), want exactly 6 with both serving", total, per)
	}

	assertLogoutPropagates(t, a, b, tok)
}

// TestClusterRevocationStorePoll: without Redis, replica B learns of a logout
// at A from the store within a second.
func TestClusterRevocationStorePoll(t *testing.T) {
	c := newGWCluster(t, "memory")
	a := c.replica(t, "a", clusterRoutes, "", false)
	b := c.replica(t, "b", clusterRoutes, "", false)
	r := a.signup(t, "erin@example.com", pw)
	wantStatus(t, r, http.StatusCreated)
	assertLogoutPropagates(t, a, b, r.str(t, "access_token"))
}

// assertLogoutPropagates logs tok's session out at a and polls b with it every
// 20 ms until b refuses it: within 1 s of the logout response (DESIGN.md
// "Revocation reaches the edge fast").
func assertLogoutPropagates(t *testing.T, a, b *gwReplica, tok string) {
	t.Helper()
	// b knows the token (and has it in its verified-token cache).
	wantStatus(t, b.get(t, "/v1/echo", tok), http.StatusOK)
	wantStatus(t, a.get(t, "/v1/echo", tok), http.StatusOK)
	r := do(t, a.c, "POST", a.issuer+"/auth/v1/logout", "", "", "Authorization", "Bearer "+tok)
	wantStatus(t, r, http.StatusNoContent)
	start := time.Now()
	wantStatus(t, a.get(t, "/v1/echo", tok), http.StatusUnauthorized)
	for {
		r := b.get(t, "/v1/echo", tok)
		elapsed := time.Since(start)
		if r.status == http.StatusUnauthorized {
			t.Logf("replica B refused the logged-out token after %v", elapsed.Round(time.Millisecond))
			return
		}
		if r.status != http.StatusOK {
			t.Fatalf("replica B: %d %s", r.status, r.body)
		}
		if elapsed > time.Second {
			t.Fatalf("replica B still accepts the logged-out token %v after the logout", elapsed.Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterStoreErrorPolicy: Redis stops mid-test; limits.on_store_error
// decides (local keeps limiting on this process's counters, allow admits, deny
// answers 429), and every failure is counted on the admin listener's /metrics.
func TestClusterStoreErrorPolicy(t *testing.T) {
	const routes = `routes:
  - {name: pub, methods: [GET], path: /v1/pub, upstream: app, access: public, rate_limits: ["2/h per ip"]}
`
	for _, tc := range []struct {
		policy string
		// want is the sorted statuses of three requests after Redis
		// stopped, one having been counted in Redis before.
		want string
	}{
		{"local", "[200 200 429]"}, // this process's counters start afresh, and limit
		{"allow", "[200 200 200]"}, // more than the 2/h
		{"deny", "[429 429 429]"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			// Always miniredis: this test stops its Redis.
			m := miniredis.RunT(t)
			c := newGWCluster(t, "redis://"+m.Addr())
			limits := "limits:\n  per_ip: 100000/s\n  on_store_error: " + tc.policy + "\n  auth: {signup: 100000/h, token: 100000/m}\n"
			s := c.replica(t, "solo", routes, limits, true)

			// With Redis up: one of the two, counted in Redis.
			wantStatus(t, s.get(t, "/v1/pub", ""), http.StatusOK)
			if !hasKeyPrefix(m.Keys(), "gatehouse:rl:") {
				t.Fatalf("no rate-limit keys in Redis: %v", m.Keys())
			}
			if n := storeErrors(t, c, s.admin, tc.policy); n != 0 {
				t.Fatalf("store errors before the outage: %v", n)
			}
			m.Close()

			// Three at once: during the outage each decision waits out the
			// Redis client's dial retries; the order of their outcomes is the
			// limiter's, so compare them sorted.
			got := make([]int, 3)
			took := make([]time.Duration, 3)
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i := range got {
				wg.Go(func() {
					start := time.Now()
					resp, err := s.c.Get(s.issuer + "/v1/pub")
					took[i] = time.Since(start).Round(time.Millisecond)
					if err != nil {
						errs[i] = err
						return
					}
					resp.Body.Close()
					got[i] = resp.StatusCode
					if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
						errs[i] = errors.New("429 without Retry-After")
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			t.Logf("request times during the outage: %v", took)
			if fmt.Sprint(got) != tc.want {
				t.Errorf("after Redis stopped: %v, want %s", got, tc.want)
			}
			if n := storeErrors(t, c, s.admin, tc.policy); n < 1 {
				t.Errorf("gatehouse_store_errors_total{store=\"ratelimit\",policy=%q} = %v, want at least 1", tc.policy, n)
			}
		})
	}
}

func hasKeyPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// storeErrors reads gatehouse_store_errors_total for the rate-limit store and
// policy from the admin listener's /metrics (0 when the series is absent).
func storeErrors(t *testing.T, c *gwCluster, admin, policy string) float64 {
	t.Helper()
	resp, err := c.client(t).Get("https://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gatehouse_store_errors_total{") || !strings.Contains(line, `store="ratelimit"`) || !strings.Contains(line, `policy="`+policy+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// TestAdminListenerMetrics: with the admin listener on (the default outside
// tests), the gateway's decisions appear on its /metrics.
func TestAdminListenerMetrics(t *testing.T) {
	c := newGWCluster(t, "memory")
	s := c.replica(t, "solo", clusterRoutes, "", true)
	wantStatus(t, do(t, s.c, "GET", s.issuer+"/v1/echo", "", ""), http.StatusUnauthorized)
	wantStatus(t, do(t, s.c, "GET", s.issuer+"/v1/nowhere", "", ""), http.StatusNotFound)
	resp, err := c.client(t).Get("https://" + s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`gatehouse_requests_total{code="401",decision="no_token",route="echo"} 1`,
		`gatehouse_requests_total{code="404",decision="no_route",route="-"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(b), "gatehouse_requests_total"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}
