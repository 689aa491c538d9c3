package monitor

import (
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Point is one interval of the live charts.
type Point struct {
	At          time.Time      `json:"at"` // end of the interval
	Requests    int64          `json:"requests"`
	Errors5xx   int64          `json:"errors_5xx"`
	Denied      map[string]int `json:"denied"` // by reason
	RateLimited int            `json:"rate_limited"`
	Banned      int            `json:"banned"`
	LoginFailed int            `json:"login_failed"`
}

// stats is a ring of points; the open point's event counts come from the
// detector goroutine, request counts from the request path at close.
type stats struct {
	mu   sync.Mutex
	ring []Point
	cur  Point
	n    int
}

func newStats(n int) *stats {
	return &stats{ring: make([]Point, 0, n), n: n, cur: Point{Denied: map[string]int{}}}
}

const maxReasons = 32 // reasons come from a closed set; this only guards the map

func (s *stats) count(e *store.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Type {
	case audit.RateLimited:
		s.cur.RateLimited++
	case audit.RequestBanned:
		s.cur.Banned++
	case audit.LoginFailed:
		s.cur.LoginFailed++
	case audit.RequestDenied, audit.WAFBlocked:
		r := e.Detail["reason"]
		if strings.HasPrefix(r, "upstream_") {
			return
		}
		if _, ok := s.cur.Denied[r]; ok || len(s.cur.Denied) < maxReasons {
			s.cur.Denied[r]++
		}
	}
}

func (s *stats) close(now time.Time, requests, e5 int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur
	p.At, p.Requests, p.Errors5xx = now.UTC(), requests, e5
	if len(s.ring) == s.n {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:s.n-1]
	}
	s.ring = append(s.ring, p)
	s.cur = Point{Denied: map[string]int{}}
}

func (s *stats) points() []Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Point(nil), s.ring...)
}
