package monitor

import (
	"net/http"
	"strconv"
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
}

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
	m.requests.WithLabelValues(route, decision, strconv.Itoa(status)).Inc()
	if d > 0 {
		m.latency.WithLabelValues(route).Observe(d.Seconds())
	}
}

// Limit records one rate-limit decision.
func (m *Metrics) Limit(name string, allowed bool) {
	outcome := "allowed"
	if !allowed {
		outcome = "denied"
	}
	m.limits.WithLabelValues(name, outcome).Inc()
}

// StoreError records one failure of a shared store and the policy applied.
func (m *Metrics) StoreError(store, policy string) {
	m.storeErrors.WithLabelValues(store, policy).Inc()
}
