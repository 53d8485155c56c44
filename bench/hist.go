package main

import (
	"math"
	"math/bits"
	"time"
)

// histSub is the number of sub-buckets per power of two. Values below
// histSub nanoseconds get one bucket each; above, each octave is split into
// histSub equal buckets, so a recorded value is known to within 1/histSub
// (0.8 %), as in an HDR histogram with two significant digits.
const (
	histSub     = 128
	histBuckets = 64 * histSub
)

// hist is a log-bucketed latency histogram in nanoseconds. It is not safe
// for concurrent use: each worker records into its own and they are merged.
type hist struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

func newHist() *hist { return &hist{counts: make([]uint64, histBuckets), min: math.MaxInt64} }

func bucketOf(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 8 // v>>e is in [128, 256)
	i := (e+1)*histSub + int(v>>e) - histSub
	return min(i, histBuckets-1)
}

// bucketLow is the smallest value that falls in bucket i.
func bucketLow(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	return int64(i%histSub+histSub) << e
}

// bucketWidth is how many values bucket i spans.
func bucketWidth(i int) int64 {
	if i < histSub {
		return 1
	}
	return 1 << (i/histSub - 1)
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1): the middle of the bucket
// holding the ceil(q*n)-th smallest value, clamped to the recorded range.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketLow(i) + bucketWidth(i)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
