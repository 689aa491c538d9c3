package hist

import (
	"math/bits"
	"time"
)

const (
	// subBits sets the precision: values at or above 2^(subBits+1) ns share a
	// bucket with at most 1/2^subBits of their neighbours (0.39 %).
	subBits  = 8
	subCount = 1 << subBits
	// linear values (below 2*subCount ns) get one bucket each.
	linear = 2 * subCount
	// maxShift bounds the range: values are clamped to Max.
	maxShift = 27
	nBuckets = linear + maxShift*subCount
)

// Max is the largest value a Histogram distinguishes; larger values are
// recorded as Max (about 68.7 s).
const Max = time.Duration(1<<(maxShift+subBits+1) - 1)

// Histogram counts durations. The zero value is empty and ready to use. It is
// not safe for concurrent use.
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	sum    uint64
	max    uint64
}

// index maps a non-negative value in ns to its bucket.
func index(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [subCount, 2*subCount)
	return linear + (shift-1)*subCount + int(v>>shift) - subCount
}

// bounds returns the smallest and largest value of bucket i.
func bounds(i int) (lo, hi uint64) {
	if i < linear {
		return uint64(i), uint64(i)
	}
	j := i - linear
	shift := uint(j/subCount + 1)
	lo = uint64(j%subCount+subCount) << shift
	return lo, lo + 1<<shift - 1
}

// Record counts one duration. Negative durations count as 0, durations above
// Max as Max.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(min(d, Max))
	}
	h.counts[index(v)]++
	h.n++
	h.sum += v
	h.max = max(h.max, v)
}

// Merge adds every count of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the average recorded value (exact up to clamping), 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// MaxValue is the largest recorded value (exact up to clamping), 0 when empty.
func (h *Histogram) MaxValue() time.Duration { return time.Duration(h.max) }

// Quantile returns the value at quantile q (0 ≤ q ≤ 1; outside values are
// clamped, NaN is 0): the middle of the bucket holding the ceil(q·n)-th smallest value,
// never more than the largest value recorded. It is 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q != q { // NaN
		q = 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bounds(i)
			return time.Duration(min(lo+(hi-lo)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
