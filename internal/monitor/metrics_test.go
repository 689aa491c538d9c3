package monitor

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The resolved-children cache must count exactly as WithLabelValues does.
func TestMetricsCountsThroughTheCache(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	for range 3 {
		m.Request("notes", "allowed", 200, time.Millisecond)
		m.Limit("route_0_user", true)
	}
	m.Request("notes", "allowed", 404, 0)
	m.Request("", "no_route", 404, time.Millisecond)
	m.Limit("route_0_user", false)
	for _, tc := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.requests.WithLabelValues("notes", "allowed", "200")), 3, "notes/allowed/200"},
		{testutil.ToFloat64(m.requests.WithLabelValues("notes", "allowed", "404")), 1, "notes/allowed/404"},
		{testutil.ToFloat64(m.requests.WithLabelValues("-", "no_route", "404")), 1, "-/no_route/404"},
		{testutil.ToFloat64(m.limits.WithLabelValues("route_0_user", "allowed")), 3, "limit allowed"},
		{testutil.ToFloat64(m.limits.WithLabelValues("route_0_user", "denied")), 1, "limit denied"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.what, tc.got, tc.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 2 {
		t.Errorf("latency series = %d, want 2 (notes and -)", n)
	}
}

func TestMetricsCacheIsBounded(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	for i := range maxCachedChildren + 10 {
		m.Request("r", "allowed", 100+i, 0)
	}
	if n := len(*m.reqObs.Load()); n != maxCachedChildren {
		t.Errorf("cache holds %d children, want the bound %d", n, maxCachedChildren)
	}
	m.Request("r", "allowed", 100+maxCachedChildren+5, 0) // past the bound: still counted
	if got := testutil.ToFloat64(m.requests.WithLabelValues("r", "allowed", "1129")); got != 2 {
		t.Errorf("uncached series = %v, want 2", got)
	}
}
