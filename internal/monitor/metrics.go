package monitor

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's metric set on its own registry.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	limits      *prometheus.CounterVec
	storeErrors *prometheus.CounterVec

	// Resolved children, so the request path does not pay WithLabelValues
	// (label hashing, a read lock shared by every core, strconv of the
	// status) on every request. Copy-on-write maps: a lookup is a plain map
	// read; a new label set (rare after warm-up) copies the map under mu.
	mu       sync.Mutex
	reqObs   atomic.Pointer[map[reqKey]reqChildren]
	limitObs atomic.Pointer[map[limitKey]prometheus.Counter]
}

type reqKey struct {
	route, decision string
	status          int
}

type reqChildren struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

type limitKey struct {
	name    string
	allowed bool
}

// maxCachedChildren bounds each resolved-children map; label sets beyond it
// (a route table of thousands of routes, say) take the WithLabelValues path.
const maxCachedChildren = 1024

// CacheStats reports verified-token cache hits and misses.
type CacheStats interface {
	Stats() (hits, misses uint64)
}

// NewMetrics registers Gatehouse's metrics (and the Go/process collectors) on
// a new registry. cache may be nil.
func NewMetrics(cache CacheStats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_requests_total", Help: "Requests decided by the gateway, by route, decision and status code.",
	}, []string{"route", "decision", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_request_duration_seconds", Help: "Time from the gateway's decision start to the end of the response, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.limits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_decisions_total", Help: "Rate-limit decisions by limit name and outcome.",
	}, []string{"limit", "outcome"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_store_errors_total", Help: "Failures of a shared store, by store and the policy applied.",
	}, []string{"store", "policy"})
	m.reg.MustRegister(m.requests, m.latency, m.limits, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cache != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_token_cache_hits_total", Help: "Verified-token cache hits.",
		}, func() float64 { h, _ := cache.Stats(); return float64(h) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_token_cache_misses_total", Help: "Verified-token cache misses (signature verifications).",
		}, func() float64 { _, mi := cache.Stats(); return float64(mi) }))
	}
	return m
}

// Registry is for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request records one gateway decision.
func (m *Metrics) Request(route, decision string, status int, d time.Duration) {
	if route == "" {
		route = "-"
	}
	k := reqKey{route, decision, status}
	c, ok := lookupChild(&m.reqObs, k)
	if !ok {
		c = reqChildren{count: m.requests.WithLabelValues(route, decision, strconv.Itoa(status)), latency: m.latency.WithLabelValues(route)}
		storeChild(&m.mu, &m.reqObs, k, c)
	}
	c.count.Inc()
	if d > 0 {
		c.latency.Observe(d.Seconds())
	}
}

// Limit records one rate-limit decision.
func (m *Metrics) Limit(name string, allowed bool) {
	k := limitKey{name, allowed}
	c, ok := lookupChild(&m.limitObs, k)
	if !ok {
		outcome := "allowed"
		if !allowed {
			outcome = "denied"
		}
		c = m.limits.WithLabelValues(name, outcome)
		storeChild(&m.mu, &m.limitObs, k, c)
	}
	c.Inc()
}

func lookupChild[K comparable, V any](p *atomic.Pointer[map[K]V], k K) (V, bool) {
	var zero V
	cur := p.Load()
	if cur == nil {
		return zero, false
	}
	v, ok := (*cur)[k]
	return v, ok
}

// storeChild adds k to the copy-on-write map p unless it is full.
func storeChild[K comparable, V any](mu *sync.Mutex, p *atomic.Pointer[map[K]V], k K, v V) {
	mu.Lock()
	defer mu.Unlock()
	cur := p.Load()
	var n int
	if cur != nil {
		n = len(*cur)
	}
	if n >= maxCachedChildren {
		return
	}
	next := make(map[K]V, n+1)
	if cur != nil {
		for ck, cv := range *cur {
			next[ck] = cv
		}
	}
	next[k] = v
	p.Store(&next)
}

// StoreError records one failure of a shared store and the policy applied.
func (m *Metrics) StoreError(store, policy string) {
	m.storeErrors.WithLabelValues(store, policy).Inc()
}
