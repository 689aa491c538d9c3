package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/tlsutil"
	"github.com/gatehouse-dev/gatehouse/tools/loadtest/load"
	"github.com/gatehouse-dev/gatehouse/tools/loadtest/proc"
)

// setup is one configuration of the comparison.
type setup struct {
	id    string // a, b, c, d
	title string
	bare  bool // the bare proxy instead of gatehouse
	auth  bool // JWT + CEL rule + per-user limit
	redis bool // cache: redis://
}

func setups() []setup {
	return []setup{
		{id: "a", title: "bare `httputil.ReverseProxy` (TLS)", bare: true},
		{id: "b", title: "Gatehouse, public route"},
		{id: "c", title: "Gatehouse, JWT + CEL + per-user limit, memory", auth: true},
		{id: "d", title: "Gatehouse, JWT + CEL + per-user limit, Redis", auth: true, redis: true},
	}
}

// compareOptions are the comparison's flags.
type compareOptions struct {
	conns        int
	warmup       time.Duration
	duration     time.Duration
	openDuration time.Duration
	openSlice    time.Duration
	half         float64
	maxRequests  int64
	runs         int
	only         map[string]bool
	redisURL     string
	gatehouse    string
	args         []string
}

func parseCompare(args []string, stderr io.Writer) (*compareOptions, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &compareOptions{args: args}
	fs.IntVar(&o.conns, "conns", 64, "keep-alive connections (closed and open loop)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "closed-loop warm-up before each measurement")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "closed-loop measurement per configuration")
	fs.DurationVar(&o.openDuration, "open-duration", 10*time.Second, "open-loop (constant rate) measurement per configuration; 0 skips it")
	fs.DurationVar(&o.openSlice, "open-slice", time.Second, "the open loop alternates between the configurations in slices this long (each gets --open-duration in all)")
	fs.Float64Var(&o.half, "rate-fraction", 0.5, "open-loop rate as a fraction of (a)'s closed-loop peak in the same run")
	fs.Int64Var(&o.maxRequests, "max-requests", 3_000_000, "hard cap on requests per measurement")
	fs.IntVar(&o.runs, "runs", 1, "complete runs of every configuration (the tables of each, then the median)")
	only := fs.String("configs", "a,b,c,d", "configurations to run, comma-separated; (a) is required (everything is a ratio to it)")
	redisDefault := os.Getenv("GATEHOUSE_TEST_REDIS_URL")
	if redisDefault == "" {
		redisDefault = "redis://127.0.0.1:6379/0"
	}
	fs.StringVar(&o.redisURL, "redis", redisDefault, "Redis for (d), loopback only (default $GATEHOUSE_TEST_REDIS_URL)")
	fs.StringVar(&o.gatehouse, "gatehouse", "", "a built gatehouse binary (default: go build ./cmd/gatehouse into a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.conns < 1 || o.conns > 1024:
		return nil, fmt.Errorf("--conns %d: want 1 to 1024", o.conns)
	case o.duration <= 0 || o.duration > 5*time.Minute, o.warmup < 0 || o.warmup > time.Minute:
		return nil, fmt.Errorf("--duration must be in (0, 5m] and --warmup in [0, 1m]")
	case o.openDuration < 0 || o.openDuration > 5*time.Minute:
		return nil, fmt.Errorf("--open-duration must be in [0, 5m]")
	case o.openSlice <= 0 || o.openSlice > o.openDuration && o.openDuration > 0:
		return nil, fmt.Errorf("--open-slice must be in (0, --open-duration]")
	case o.half <= 0 || o.half > 1:
		return nil, fmt.Errorf("--rate-fraction %v: want (0, 1]", o.half)
	case o.maxRequests < 1 || o.maxRequests > 100_000_000:
		return nil, fmt.Errorf("--max-requests %d: want 1 to 100000000", o.maxRequests)
	case o.runs < 1 || o.runs > 10:
		return nil, fmt.Errorf("--runs %d: want 1 to 10", o.runs)
	}
	o.only = map[string]bool{}
	known := map[string]bool{}
	for _, s := range setups() {
		known[s.id] = true
	}
	for _, id := range strings.Split(*only, ",") {
		id = strings.TrimSpace(id)
		if !known[id] {
			return nil, fmt.Errorf("--configs: unknown configuration %q (want a, b, c, d)", id)
		}
		o.only[id] = true
	}
	if !o.only["a"] {
		return nil, fmt.Errorf("--configs must include a: every figure is a ratio to it")
	}
	if err := checkRedisURL(o.redisURL); err != nil {
		return nil, err
	}
	return o, nil
}

// checkRedisURL refuses a Redis that is not on this machine.
func checkRedisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "redis" {
		return fmt.Errorf("--redis %q: want redis://127.0.0.1:PORT/DB", s)
	}
	h := u.Hostname()
	if a, err := netip.ParseAddr(h); (err != nil || !a.IsLoopback()) && h != "localhost" {
		return fmt.Errorf("--redis %q: only a loopback Redis may be used", s)
	}
	return nil
}

// measurement is what one configuration gave in one run.
type measurement struct {
	s         setup
	skipped   string
	closed    *load.Result
	cpu       cpuUse // during the closed-loop measurement
	open      *load.Result
	openRate  float64
	openCPU   cpuUse
	sanityMsg string
	logNote   string // warnings and errors gatehouse logged, if any
}

// cpuUse is the CPU time each process used during one measurement.
type cpuUse struct{ proxy, upstream, loadgen time.Duration }

func perRequest(d time.Duration, r *load.Result) float64 {
	n := r.OK + r.Non2xx
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// compare is the comparison's state for one invocation.
type compare struct {
	o        *compareOptions
	tmp      string
	self     string
	bin      string
	ca       tlsutil.DevCA
	tls      *tls.Config
	http     *http.Client
	up       *child
	kids     *children
	redisOK  string // "" when reachable, else why (d) is skipped
	stderr   io.Writer
	progress func(format string, a ...any)
}

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseCompare(args, stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gatehouse-loadtest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	kids := &children{}
	defer kids.stopAll()
	c := &compare{o: o, tmp: tmp, kids: kids, stderr: stderr,
		progress: func(f string, a ...any) { fmt.Fprintf(stderr, "loadtest: "+f+"\n", a...) }}
	if err := c.prepare(ctx); err != nil {
		return err
	}
	var all [][]*measurement
	for run := 1; run <= o.runs; run++ {
		ms, err := c.runOnce(ctx, run)
		if err != nil {
			return err
		}
		all = append(all, ms)
		fmt.Fprintln(stdout, c.runTables(run, ms))
	}
	fmt.Fprintln(stdout, c.summary(all))
	return nil
}

// prepare builds gatehouse, makes the dev CA, and starts the upstream.
func (c *compare) prepare(ctx context.Context) error {
	var err error
	if c.self, err = os.Executable(); err != nil {
		return err
	}
	c.bin = c.o.gatehouse
	if c.bin == "" {
		c.bin = filepath.Join(c.tmp, "gatehouse")
		c.progress("building gatehouse into %s", c.bin)
		bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(bctx, "go", "build", "-o", c.bin, "./cmd/gatehouse")
		cmd.Dir, err = moduleRoot(bctx)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = c.stderr, c.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build gatehouse: %w", err)
		}
	}
	if c.ca, err = tlsutil.EnsureDevCA(filepath.Join(c.tmp, "ca"), time.Now()); err != nil {
		return err
	}
	pem, err := os.ReadFile(c.ca.CAFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c.tls = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	tr := &http.Transport{TLSClientConfig: c.tls, Proxy: nil}
	c.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	up, err := startChild(ctx, "upstream", c.tmp, "listening ", c.self, "upstream", "--listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.up = c.kids.add(up)
	c.redisOK = redisReachable(c.o.redisURL)
	if c.o.only["d"] && c.redisOK != "" {
		c.progress("(d) will be skipped: %s", c.redisOK)
	}
	return nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run loadtest from inside the gatehouse module (go env GOMOD: %q, %v)", gomod, err)
	}
	return filepath.Dir(gomod), nil
}

// redisReachable returns "" when a TCP connection to the Redis opens.
func redisReachable(s string) string {
	u, _ := url.Parse(s)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	conn, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return fmt.Sprintf("Redis at %s is unreachable (%v)", host, err)
	}
	conn.Close()
	return ""
}

// live is a configuration's proxy and loaded connections, kept running
// between the closed loop and the interleaved open loop.
type live struct {
	m    *measurement
	p    *child
	pool *load.Pool
}

func (l *live) close() {
	l.pool.Close()
	l.p.stop()
}

func (c *compare) runOnce(ctx context.Context, run int) ([]*measurement, error) {
	var ms []*measurement
	var lives []*live
	defer func() {
		for _, l := range lives {
			l.close()
		}
	}()
	for _, s := range setups() {
		if !c.o.only[s.id] {
			continue
		}
		if s.redis && c.redisOK != "" {
			ms = append(ms, &measurement{s: s, skipped: c.redisOK})
			continue
		}
		c.progress("run %d: (%s) %s, closed loop", run, s.id, s.title)
		l, err := c.measureClosed(ctx, run, s)
		if l != nil {
			lives = append(lives, l)
		}
		if err != nil {
			return nil, fmt.Errorf("run %d (%s): %w", run, s.id, err)
		}
		ms = append(ms, l.m)
	}
	if c.o.openDuration > 0 && len(lives) > 0 {
		c.progress("run %d: open loop, the configurations interleaved in %s slices", run, c.o.openSlice)
		if err := c.measureOpen(ctx, lives); err != nil {
			return nil, fmt.Errorf("run %d open loop: %w", run, err)
		}
	}
	for _, l := range lives {
		if err := l.p.alive(); err != nil {
			return nil, fmt.Errorf("run %d (%s): %w", run, l.m.s.id, err)
		}
		if !l.m.s.bare {
			l.m.logNote = logProblems(l.p.logPath)
		}
	}
	return ms, ctx.Err()
}

// measureClosed starts the proxy of s and runs the closed loop on it. The
// proxy stays up (the caller closes the returned live) for the open loop.
func (c *compare) measureClosed(ctx context.Context, run int, s setup) (*live, error) {
	var p *child
	var err error
	var hdr []string
	if s.bare {
		p, err = startChild(ctx, fmt.Sprintf("bare-%d", run), c.tmp, "listening ", c.self, "bare", "--listen", "127.0.0.1:0",
			"--upstream", "http://"+c.up.addr, "--cert", c.ca.CertFile, "--key", c.ca.KeyFile)
	} else {
		p, err = c.startGatehouse(ctx, run, s)
	}
	if err != nil {
		return nil, err
	}
	c.kids.add(p)
	m := &measurement{s: s}
	if s.auth {
		tok, err := c.signup(ctx, p.addr, fmt.Sprintf("user-%s-%d@example.com", s.id, run))
		if err != nil {
			p.stop()
			return nil, err
		}
		hdr = []string{"Authorization", "Bearer " + tok}
		if m.sanityMsg, err = c.sanity(ctx, p.addr, tok); err != nil {
			p.stop()
			return nil, err
		}
	}
	req, err := load.GET(p.addr, "/v1/bench", hdr...)
	if err != nil {
		p.stop()
		return nil, err
	}
	pool, err := load.Dial(ctx, p.addr, req, load.Options{Conns: c.o.conns, TLS: c.tls})
	if err != nil {
		p.stop()
		return nil, err
	}
	l := &live{m: m, p: p, pool: pool}
	if c.o.warmup > 0 {
		pool.Closed(ctx, c.o.warmup, c.o.maxRequests)
	}
	before := c.cpu(p)
	m.closed = pool.Closed(ctx, c.o.duration, c.o.maxRequests)
	m.cpu = c.cpu(p).minus(before)
	if err := p.alive(); err != nil {
		return l, err
	}
	return l, ctx.Err()
}

// measureOpen runs the open loop at --rate-fraction × (a)'s closed-loop peak
// on every configuration, interleaved: --open-slice of one, then of the next,
// round after round (the order rotating each round) until each has had
// --open-duration. Why interleaved: on a shared machine the background load
// drifts over tens of seconds, and a p99 measured in one 10-s window and
// compared with a p99 from another window seconds later mostly compares the
// windows. In slices, every configuration sees the same stretch of time.
func (c *compare) measureOpen(ctx context.Context, lives []*live) error {
	var peakA float64
	for _, l := range lives {
		if l.m.s.id == "a" {
			peakA = l.m.closed.Throughput()
		}
	}
	rate := c.o.half * peakA
	if rate < 1 {
		return nil
	}
	for _, l := range lives {
		l.m.openRate = rate
		l.m.open = &load.Result{}
	}
	rounds := max(1, int((c.o.openDuration+c.o.openSlice/2)/c.o.openSlice))
	slice := c.o.openDuration / time.Duration(rounds)
	for round := 0; round < rounds; round++ {
		for i := range lives {
			l := lives[(round+i)%len(lives)]
			before := c.cpu(l.p)
			r, err := l.pool.Open(ctx, rate, slice, c.o.maxRequests)
			if err != nil {
				return err
			}
			l.m.openCPU = l.m.openCPU.plus(c.cpu(l.p).minus(before))
			l.m.open.Add(r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

// cpu reads the CPU time of the proxy, the upstream and this process. A
// failed read (not Linux) is 0, shown as "n/a".
func (c *compare) cpu(p *child) cpuUse {
	var u cpuUse
	u.proxy, _ = proc.CPU(p.pid())
	u.upstream, _ = proc.CPU(c.up.pid())
	u.loadgen, _ = proc.CPU(os.Getpid())
	return u
}

func (u cpuUse) minus(o cpuUse) cpuUse {
	return cpuUse{u.proxy - o.proxy, u.upstream - o.upstream, u.loadgen - o.loadgen}
}

func (u cpuUse) plus(o cpuUse) cpuUse {
	return cpuUse{u.proxy + o.proxy, u.upstream + o.upstream, u.loadgen + o.loadgen}
}

// gatehouseConfig is the YAML for configurations (b)–(d). Edge limits are off
// (or far above the load) so they never throttle it; the per-user limit of
// (c)/(d) is evaluated on every request but never reached.
func gatehouseConfig(addr, dir, upstream, cache string, ca tlsutil.DevCA, auth bool) string {
	route := "    access: public\n"
	if auth {
		route = `    access: authenticated
    allow: request.method == "GET" && token.plan == "free"
    rate_limits: ["1000000/s per user"]
`
	}
	return fmt.Sprintf(`issuer: https://%[1]s
store: sqlite://%[2]s/gatehouse.db
cache: %[4]s
kek: file://%[2]s/kek.key
server:
  listen: %[1]s
  tls: {cert_file: %[5]s, key_file: %[6]s}
  shutdown_timeout: 2s
admin:
  disabled: true
tokens:
  audience: [gatehouse-bench]
  access_ttl: 1h
log:
  level: warn
audit:
  log: false
limits:
  global: ""
  per_ip: ""
  auth: {signup: 100000/h, token: 100000/m}
upstreams:
  bench:
    url: http://%[3]s
routes:
  - name: bench
    methods: [GET]
    path: /v1/bench
    upstream: bench
%[7]s`, addr, dir, upstream, cache, ca.CertFile, ca.KeyFile, route)
}

func (c *compare) startGatehouse(ctx context.Context, run int, s setup) (*child, error) {
	name := fmt.Sprintf("gatehouse-%s-%d", s.id, run)
	dir := filepath.Join(c.tmp, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := keys.GenerateKEKFile(filepath.Join(dir, "kek.key")); err != nil {
		return nil, err
	}
	addr, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	cache := "memory"
	if s.redis {
		cache = c.o.redisURL
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(gatehouseConfig(addr, dir, c.up.addr, cache, c.ca, s.auth)), 0o600); err != nil {
		return nil, err
	}
	p, err := startChild(ctx, name, c.tmp, "serving https://", c.bin, "serve", "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, p); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// freeLoopbackPort returns a 127.0.0.1 address that was free a moment ago
// (gatehouse needs its address in its config, before it starts).
func freeLoopbackPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls /readyz for at most 30 s.
func (c *compare) waitReady(ctx context.Context, p *child) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.alive(); err != nil {
			return err
		}
		st, _, _, err := c.do(ctx, http.MethodGet, p.addr, "/readyz", "", nil)
		if err == nil && st == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30 s (status %d, %v):\n%s", p.name, st, err, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// do sends one request with the setup client.
func (c *compare) do(ctx context.Context, method, addr, path, bearer string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, b, err
}

// signup creates a user and returns its access token.
func (c *compare) signup(ctx context.Context, addr, email string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": "violet-harbor-quartz-97"})
	st, _, b, err := c.do(ctx, http.MethodPost, addr, "/auth/v1/signup", "", body)
	if err != nil {
		return "", fmt.Errorf("signup: %w", err)
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if st != http.StatusCreated || json.Unmarshal(b, &r) != nil || r.AccessToken == "" {
		return "", fmt.Errorf("signup: status %d, no access token: %.300s", st, b)
	}
	return r.AccessToken, nil
}

// sanity proves the authenticated route really runs the chain: no token is
// 401, the token is 200 with the per-user limit's RateLimit header.
func (c *compare) sanity(ctx context.Context, addr, tok string) (string, error) {
	st, _, _, err := c.do(ctx, http.MethodGet, addr, "/v1/bench", "", nil)
	if err != nil || st != http.StatusUnauthorized {
		return "", fmt.Errorf("sanity: without a token: status %d, %v; want 401", st, err)
	}
	st, h, _, err := c.do(ctx, http.MethodGet, addr, "/v1/bench", tok, nil)
	if err != nil || st != http.StatusOK || h.Get("RateLimit") == "" {
		return "", fmt.Errorf("sanity: with a token: status %d, RateLimit %q, %v; want 200 and the header", st, h.Get("RateLimit"), err)
	}
	return "no token → 401; token → 200, RateLimit: " + h.Get("RateLimit"), nil
}

// logProblems counts the WARN and ERROR lines in a gatehouse log (JSON lines)
// and quotes the first, so a run that hid store failures or upstream errors
// behind a fallback says so.
func logProblems(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	n, first := 0, ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			if n++; first == "" {
				first = line
			}
		}
	}
	if n == 0 {
		return ""
	}
	if len(first) > 300 {
		first = first[:300] + "…"
	}
	return fmt.Sprintf("%d warning/error log lines, the first: `%s`", n, first)
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
