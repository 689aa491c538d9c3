package load

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/tools/loadtest/hist"
)

// ErrNotLoopback reports a target outside 127.0.0.0/8 and ::1: this tool only
// ever loads servers on the machine it runs on.
var ErrNotLoopback = errors.New("load: target is not a loopback address")

// Defaults for the zero values of Options and the per-call bounds.
const (
	DefaultConns       = 64
	DefaultTimeout     = 5 * time.Second
	DefaultMaxRequests = 5_000_000
)

// Options configure a Pool. The zero value means 64 connections and a 5 s
// per-request timeout.
type Options struct {
	// Conns is the number of keep-alive connections (and workers). 0 → 64.
	Conns int
	// Timeout bounds one request, dial included. 0 → 5 s.
	Timeout time.Duration
	// TLS is the client TLS configuration (RootCAs, ServerName). ALPN is
	// forced to http/1.1. Nil means plain TCP.
	TLS *tls.Config
}

// Pool is a set of connections to one address, each used by one worker at a
// time. Close it when done.
type Pool struct {
	addr  string
	req   []byte
	o     Options
	conns []*conn
}

type conn struct {
	c  net.Conn
	br *bufio.Reader
}

// Dial opens o.Conns connections to addr (a loopback host:port) concurrently
// and checks that each answers req. req is a complete HTTP/1.1 request, sent
// as is for every request (see GET).
func Dial(ctx context.Context, addr string, req []byte, o Options) (*Pool, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	if o.Conns <= 0 {
		o.Conns = DefaultConns
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TLS != nil {
		o.TLS = o.TLS.Clone()
		o.TLS.NextProtos = []string{"http/1.1"}
	}
	p := &Pool{addr: addr, req: req, o: o, conns: make([]*conn, o.Conns)}
	errs := make([]error, o.Conns)
	var wg sync.WaitGroup
	for i := range p.conns {
		wg.Go(func() {
			c := &conn{}
			if errs[i] = p.redial(ctx, c); errs[i] == nil {
				var st int
				st, errs[i] = p.do(c)
				if errs[i] == nil && st/100 != 2 {
					errs[i] = fmt.Errorf("load: warm-up request answered %d", st)
				}
			}
			p.conns[i] = c
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.Close()
		return nil, fmt.Errorf("load: dial %s: %w", addr, err)
	}
	return p, nil
}

// Close closes every connection.
func (p *Pool) Close() {
	for _, c := range p.conns {
		if c != nil && c.c != nil {
			c.c.Close()
		}
	}
}

func (p *Pool) redial(ctx context.Context, c *conn) error {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
	d := net.Dialer{Timeout: p.o.Timeout}
	var nc net.Conn
	var err error
	if p.o.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: p.o.TLS}
		nc, err = td.DialContext(ctx, "tcp", p.addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", p.addr)
	}
	if err != nil {
		return err
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// do sends the request on c and reads the whole answer. After an error c is
// closed and must be redialled.
func (p *Pool) do(c *conn) (int, error) {
	if c.c == nil {
		return 0, errors.New("load: connection closed")
	}
	_ = c.c.SetDeadline(time.Now().Add(p.o.Timeout))
	if _, err := c.c.Write(p.req); err != nil {
		c.c.Close()
		c.c = nil
		return 0, err
	}
	st, closeAfter, err := readResponse(c.br)
	if err != nil {
		c.c.Close()
		c.c = nil
		return 0, err
	}
	if closeAfter {
		// The server will close; the next request needs a new connection.
		c.c.Close()
		c.c = nil
	}
	return st, nil
}

// readResponse reads one HTTP/1.1 response to a GET and discards its body.
// It returns the status and whether the connection must be closed after it.
//
// Why not http.ReadResponse: it builds a Header map, a string per header line
// and a body reader for every response, so its CPU grows with the number of
// response headers, and on a machine where the load generator shares the
// cores with the proxy, that CPU is taken from the proxy being measured. A
// proxy that sends more headers (Gatehouse's security and RateLimit headers)
// would be charged for the load generator's parsing of them. This reads the
// same bytes and allocates nothing.
func readResponse(br *bufio.Reader) (status int, closeAfter bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, fmt.Errorf("load: status line: %w", err)
	}
	// "HTTP/1.x NNN reason"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("load: malformed status line %q", line)
	}
	for _, ch := range line[9:12] {
		if ch < '0' || ch > '9' {
			return 0, false, fmt.Errorf("load: malformed status line %q", line)
		}
		status = status*10 + int(ch-'0')
	}
	closeAfter = line[7] == '0' // HTTP/1.0 closes unless told otherwise; good enough here
	length, chunked := int64(-1), false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("load: header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("load: malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length = parseLength(value)
			if length < 0 {
				return 0, false, fmt.Errorf("load: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
			if !chunked {
				return 0, false, fmt.Errorf("load: unsupported Transfer-Encoding %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case status/100 == 1 || status == http.StatusNoContent || status == http.StatusNotModified:
		return 0, false, fmt.Errorf("load: unexpected status %d", status)
	case chunked:
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
			return 0, false, fmt.Errorf("load: chunked body: %w", err)
		}
		// The trailer section (usually empty) ends with an empty line.
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return 0, false, fmt.Errorf("load: trailer: %w", err)
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
	case length >= 0:
		if _, err := br.Discard(int(length)); err != nil {
			return 0, false, fmt.Errorf("load: body: %w", err)
		}
	default:
		// No length: the body runs to the end of the connection.
		if _, err := io.Copy(io.Discard, br); err != nil {
			return 0, false, fmt.Errorf("load: body: %w", err)
		}
		closeAfter = true
	}
	return status, closeAfter, nil
}

// parseLength parses a Content-Length value, -1 when it is not one.
func parseLength(b []byte) int64 {
	if len(b) == 0 || len(b) > 15 {
		return -1
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return -1
		}
		n = n*10 + int64(ch-'0')
	}
	return n
}

// Result is what one run measured.
type Result struct {
	// OK counts 2xx answers, Non2xx the other answers, Errors the requests
	// that got no answer (I/O errors, timeouts). Dropped counts open-loop
	// requests never sent because the run reached its hard deadline.
	OK, Non2xx, Errors, Dropped uint64
	// Statuses counts answers by status code.
	Statuses map[int]uint64
	// Elapsed is the measured time: from the first send to the last answer.
	Elapsed time.Duration
	// Latency is per answered request: from sending (closed loop) or from the
	// scheduled time (open loop).
	Latency hist.Histogram
	// Service, in the open loop only, is from the actual send to the answer:
	// Latency minus the time a request waited for a free connection or for a
	// late timer.
	Service hist.Histogram
}

// Add adds o's counts, histograms and elapsed time to r (a measurement
// taken in several slices).
func (r *Result) Add(o *Result) {
	if r.Statuses == nil {
		r.Statuses = map[int]uint64{}
	}
	r.OK += o.OK
	r.Non2xx += o.Non2xx
	r.Errors += o.Errors
	r.Dropped += o.Dropped
	for s, n := range o.Statuses {
		r.Statuses[s] += n
	}
	r.Elapsed += o.Elapsed
	r.Latency.Merge(&o.Latency)
	r.Service.Merge(&o.Service)
}

// Throughput is 2xx answers per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// StatusSummary lists the counts by status, like "200×1000 429×3".
func (r *Result) StatusSummary() string {
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b strings.Builder
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d×%d", c, r.Statuses[c])
	}
	return b.String()
}

type worker struct {
	lat, svc                  hist.Histogram
	ok, non2xx, errs, dropped uint64
	statuses                  map[int]uint64
}

func (w *worker) count(st int, err error) {
	switch {
	case err != nil:
		w.errs++
	case st/100 == 2:
		w.ok++
	default:
		w.non2xx++
	}
	if err == nil {
		w.statuses[st]++
	}
}

func (p *Pool) merge(ws []*worker, elapsed time.Duration) *Result {
	r := &Result{Elapsed: elapsed, Statuses: map[int]uint64{}}
	for _, w := range ws {
		r.Latency.Merge(&w.lat)
		r.Service.Merge(&w.svc)
		r.OK += w.ok
		r.Non2xx += w.non2xx
		r.Errors += w.errs
		r.Dropped += w.dropped
		for s, n := range w.statuses {
			r.Statuses[s] += n
		}
	}
	return r
}

// ensure redials a closed connection, waiting a little after a failed dial so
// a dead server does not turn the worker into a busy loop.
func (p *Pool) ensure(ctx context.Context, c *conn) bool {
	if c.c != nil {
		return true
	}
	if err := p.redial(ctx, c); err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		return false
	}
	return true
}

// Closed runs the closed loop: every connection sends its next request as
// soon as it has read the previous answer, until d has passed or maxRequests
// (0 → DefaultMaxRequests) have been sent, or ctx ends.
func (p *Pool) Closed(ctx context.Context, d time.Duration, maxRequests int64) *Result {
	if maxRequests <= 0 {
		maxRequests = DefaultMaxRequests
	}
	var sent atomic.Int64
	ws := make([]*worker, len(p.conns))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, c := range p.conns {
		w := &worker{statuses: map[int]uint64{}}
		ws[i] = w
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) || sent.Add(1) > maxRequests {
					return
				}
				if !p.ensure(ctx, c) {
					w.errs++
					continue
				}
				st, err := p.do(c)
				w.lat.Record(time.Since(t0))
				w.count(st, err)
			}
		})
	}
	wg.Wait()
	return p.merge(ws, time.Since(start))
}

// Open runs the open loop: rate requests per second for d (at most
// maxRequests, 0 → DefaultMaxRequests), request i scheduled at start + i/rate
// and sent by the first free connection. Latency counts from the scheduled
// time, so time spent waiting for a free connection is included. Requests not
// sent by 2·d + the request timeout are dropped, which bounds the run.
func (p *Pool) Open(ctx context.Context, rate float64, d time.Duration, maxRequests int64) (*Result, error) {
	if rate <= 0 || d <= 0 {
		return nil, fmt.Errorf("load: open loop: rate %v and duration %v must be positive", rate, d)
	}
	if maxRequests <= 0 {
		maxRequests = DefaultMaxRequests
	}
	total := min(int64(rate*d.Seconds()), maxRequests)
	var next atomic.Int64
	ws := make([]*worker, len(p.conns))
	start := time.Now()
	hard := start.Add(2*d + p.o.Timeout)
	interval := float64(time.Second) / rate
	var wg sync.WaitGroup
	for i, c := range p.conns {
		w := &worker{statuses: map[int]uint64{}}
		ws[i] = w
		wg.Go(func() {
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				at := start.Add(time.Duration(float64(n) * interval))
				if ctx.Err() != nil || at.After(hard) {
					w.dropped++
					continue
				}
				if wait := time.Until(at); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						w.dropped++
						continue
					case <-timer.C:
					}
				}
				if time.Now().After(hard) {
					w.dropped++
					continue
				}
				if !p.ensure(ctx, c) {
					w.errs++
					continue
				}
				sentAt := time.Now()
				st, err := p.do(c)
				end := time.Now()
				w.lat.Record(end.Sub(at))
				w.svc.Record(end.Sub(sentAt))
				w.count(st, err)
			}
		})
	}
	wg.Wait()
	return p.merge(ws, time.Since(start)), nil
}

// GET returns a complete HTTP/1.1 GET request for path on host with the given
// extra header lines (name, value pairs). It refuses CR and LF in any part, so
// a value cannot smuggle a second request.
func GET(host, path string, kv ...string) ([]byte, error) {
	parts := append([]string{host, path}, kv...)
	for _, s := range parts {
		if strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("load: CR or LF in a request part")
		}
	}
	if len(kv)%2 != 0 {
		return nil, errors.New("load: header names and values must come in pairs")
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t") {
		return nil, fmt.Errorf("load: bad path %q", path)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-loadtest\r\nAccept: application/json\r\n", path, host)
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[i], kv[i+1])
	}
	b.WriteString("\r\n")
	return []byte(b.String()), nil
}
