package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exact is the ceil(q·n)-th smallest sample, the definition Quantile follows.
func exact(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	r = max(r, 1)
	return sorted[r-1]
}

func TestQuantileMatchesSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func() time.Duration
	}{
		{"tiny linear", func() time.Duration { return time.Duration(rng.IntN(400)) }},
		{"microseconds", func() time.Duration { return time.Duration(50_000 + rng.IntN(400_000)) }},
		{"long tail", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }},
		{"seconds", func() time.Duration { return time.Duration(rng.Int64N(int64(30 * time.Second))) }},
		{"one value", func() time.Duration { return 1234567 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			s := make([]time.Duration, 20000)
			for i := range s {
				s[i] = tt.gen()
				h.Record(s[i])
			}
			slices.Sort(s)
			for _, q := range []float64{0, 0.001, 0.5, 0.9, 0.99, 0.999, 1} {
				got, want := h.Quantile(q), exact(s, q)
				if tol := float64(want)/float64(subCount) + 1; math.Abs(float64(got-want)) > tol {
					t.Errorf("q%.3f = %v, want %v ± %.0fns", q, got, want, tol)
				}
			}
			if h.Count() != uint64(len(s)) || h.MaxValue() != s[len(s)-1] {
				t.Errorf("count %d max %v, want %d %v", h.Count(), h.MaxValue(), len(s), s[len(s)-1])
			}
		})
	}
}

func TestHostileValues(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"negative counts as zero", []time.Duration{-time.Second, -1}, 1, 0},
		{"beyond max clamps", []time.Duration{math.MaxInt64}, 0.5, bucketLo(Max) + (Max-bucketLo(Max))/2},
		{"q below 0 clamps", []time.Duration{5, 7}, -3, 5},
		{"q above 1 clamps", []time.Duration{5, 7}, 9, 7},
		{"q NaN is the smallest", []time.Duration{5, 7}, math.NaN(), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.in {
				h.Record(d)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func bucketLo(d time.Duration) time.Duration {
	lo, _ := bounds(index(uint64(d)))
	return time.Duration(lo)
}

func TestBucketsTileTheRange(t *testing.T) {
	// Every bucket starts right after the previous one ends: no gaps, no overlap.
	var next uint64
	for i := range nBuckets {
		lo, hi := bounds(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d = [%d,%d], want start %d", i, lo, hi, next)
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d: index(lo)=%d index(hi)=%d", i, index(lo), index(hi))
		}
		next = hi + 1
	}
	if time.Duration(next-1) != Max {
		t.Fatalf("last value %d, want Max %d", next-1, Max)
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatalf("merged histogram differs: n=%d mean=%v, want n=%d mean=%v", a.Count(), a.Mean(), all.Count(), all.Mean())
	}
}

func FuzzRecord(f *testing.F) {
	f.Add(int64(0), int64(1), 0.5)              // smallest values
	f.Add(int64(511), int64(512), 0.99)         // the linear/log boundary
	f.Add(int64(-5), int64(math.MaxInt64), 1.0) // clamped at both ends
	f.Add(int64(1e6), int64(3e6), math.Inf(-1)) // a q outside [0,1]
	f.Fuzz(func(t *testing.T, a, b int64, q float64) {
		var h Histogram
		h.Record(time.Duration(a))
		h.Record(time.Duration(b))
		got := h.Quantile(q)
		if got < 0 || got > h.MaxValue() || got > Max {
			t.Fatalf("Quantile(%v) = %v outside [0, %v]", q, got, h.MaxValue())
		}
		if p50, p99 := h.Quantile(0.5), h.Quantile(0.99); p50 > p99 {
			t.Fatalf("p50 %v > p99 %v", p50, p99)
		}
	})
}
