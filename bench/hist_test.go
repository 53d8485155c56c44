package main

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 3_600_000_000_000} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d, below the previous %d", v, i, prev)
		}
		prev = i
		lo, w := bucketLow(i), bucketWidth(i)
		if v < lo || v >= lo+w {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		if float64(w)/float64(max(lo, 1)) > 1.0/histSub+1e-12 && v >= histSub {
			t.Fatalf("bucket %d too wide: %d at %d", i, w, lo)
		}
	}
}

func TestQuantileWithinOnePercent(t *testing.T) {
	h := newHist()
	r := rand.New(rand.NewPCG(1, 2))
	var vals []int64
	for range 100000 {
		v := int64(r.ExpFloat64() * float64(200*time.Microsecond))
		vals = append(vals, v)
		h.record(time.Duration(v))
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := float64(vals[int(q*float64(len(vals)))-1])
		got := float64(h.quantile(q))
		if d := (got - want) / want; d > 0.01 || d < -0.01 {
			t.Errorf("q%.3f: got %.0f want %.0f", q, got, want)
		}
	}
	o := newHist()
	o.merge(h)
	if o.n != h.n || o.quantile(0.99) != h.quantile(0.99) {
		t.Fatal("merge changed the distribution")
	}
}
