package stats

import (
	"sync"
	"time"
)

// sampleInterval is how often the sampler reads the counters. HAProxy's
// rates count events "over the last elapsed second".
const sampleInterval = time.Second

// rates derives per-second rates, their maxima, the maximum of current
// sessions and the time of the last session from counters read once per
// second. It never touches the data path: it reads the same atomics a
// scrape reads, from its own goroutine.
type rates struct {
	mu     sync.Mutex
	last   time.Time // previous sample; zero before the first
	meters map[meterKey]*meter
}

type meterKey struct {
	typ    int
	px, sv string
}

type meter struct {
	stot, req           int64 // totals at the previous sample
	rate, reqRate       int64 // per second, over the last interval
	rateMax, reqRateMax int64
	scurMax             int64
	lastSess            time.Time // last increase of stot; zero: unknown
	seen                time.Time
}

func keyOf(r *row) meterKey {
	return meterKey{typ: r.typ, px: r.px, sv: r.sv}
}

// observe takes one sample.
func (rt *rates) observe(gs []*group, now time.Time) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.meters == nil {
		rt.meters = make(map[meterKey]*meter)
	}
	elapsed := now.Sub(rt.last)
	first := rt.last.IsZero() || elapsed <= 0
	for _, g := range gs {
		for _, r := range g.rows() {
			k := keyOf(r)
			m := rt.meters[k]
			stot, _ := r.num(colStot)
			req, hasReq := r.num(colReqTot)
			if m == nil {
				m = &meter{stot: stot, req: req}
				if stot > 0 {
					m.lastSess = now
				}
				rt.meters[k] = m
			} else if !first {
				d := delta(stot, m.stot)
				m.rate = perSecond(d, elapsed)
				m.rateMax = max(m.rateMax, m.rate)
				if d > 0 {
					m.lastSess = now
				}
				if hasReq {
					m.reqRate = perSecond(delta(req, m.req), elapsed)
					m.reqRateMax = max(m.reqRateMax, m.reqRate)
				}
				m.stot, m.req = stot, req
			}
			if scur, ok := r.num(colScur); ok {
				m.scurMax = max(m.scurMax, scur)
			}
			m.seen = now
		}
	}
	for k, m := range rt.meters {
		if !m.seen.Equal(now) {
			delete(rt.meters, k) // the object is gone
		}
	}
	rt.last = now
}

// delta is the increase of a counter; a counter that went down was
// recreated (a reload), so all of its value is new.
func delta(cur, prev int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func perSecond(d int64, elapsed time.Duration) int64 {
	return (d*int64(time.Second) + int64(elapsed)/2) / int64(elapsed)
}

// apply fills the rate columns of a fresh snapshot. Rows the sampler has not
// seen yet (or all of them, when it does not run) keep them empty.
func (rt *rates) apply(gs []*group, now time.Time) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, g := range gs {
		for _, r := range g.rows() {
			m := rt.meters[keyOf(r)]
			if m == nil {
				continue
			}
			r.set(colRate, m.rate)
			r.set(colRateMax, m.rateMax)
			if scur, ok := r.num(colScur); ok {
				r.set(colSmax, max(m.scurMax, scur))
			}
			switch r.typ {
			case typeFrontend:
				r.set(colConnRate, m.rate)
				r.set(colConnRateMax, m.rateMax)
				if _, ok := r.num(colReqTot); ok {
					r.set(colReqRate, m.reqRate)
					r.set(colReqRateMax, m.reqRateMax)
				}
			default:
				switch stot, _ := r.num(colStot); {
				case stot == 0:
					r.set(colLastsess, -1) // never, as HAProxy prints it
				case !m.lastSess.IsZero():
					r.set(colLastsess, int64(now.Sub(m.lastSess)/time.Second))
				}
			}
		}
	}
}
