package stats

import (
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// The sampler's clock is the time it is given: these tests step it.
func TestRates(t *testing.T) {
	be := newBackend("be", spec("s", "127.0.0.1:1"), spec("idle", "127.0.0.1:2"))
	srv := be.Servers()[0]
	s := New(Options{Backends: func() []*proxy.Backend { return []*proxy.Backend{be} }})
	t0 := time.Unix(1_700_000_000, 0)

	cell := func(now time.Time, svname string, col int) string {
		t.Helper()
		for _, g := range s.snapshot(now) {
			for _, r := range g.rows() {
				if r.px == "be" && r.sv == svname {
					return r.cell(col)
				}
			}
		}
		t.Fatalf("no row be/%s", svname)
		return ""
	}

	// Before any sample the rate columns are empty, not zero.
	if got := cell(t0, "s", colRate); got != "" {
		t.Fatalf("rate before sampling = %q", got)
	}
	s.sample(t0)
	if got := cell(t0, "s", colRate); got != "0" {
		t.Fatalf("rate after the first sample = %q", got)
	}
	if got := cell(t0, "s", colLastsess); got != "-1" {
		t.Fatalf("lastsess with no session = %q", got)
	}

	steps := []struct {
		at       time.Duration // since t0
		requests uint64        // added before the sample
		active   int64         // in flight at the sample
		rate     string
		rateMax  string
		smax     string
		lastsess string // at the sample's time + 3 s
	}{
		{1 * time.Second, 10, 3, "10", "10", "3", "3"},
		{2 * time.Second, 4, -3, "4", "10", "3", "3"},
		{3 * time.Second, 0, 0, "0", "10", "3", "4"},
		// A late tick: 6 requests over 2 s is 3 per second.
		{5 * time.Second, 6, 0, "3", "10", "3", "3"},
	}
	for _, st := range steps {
		srv.Stats.Requests.Add(st.requests)
		srv.Stats.Active.Add(st.active)
		now := t0.Add(st.at)
		s.sample(now)
		for col, want := range map[int]string{colRate: st.rate, colRateMax: st.rateMax, colSmax: st.smax} {
			if got := cell(now, "s", col); got != want {
				t.Errorf("at %v: %s = %q, want %q", st.at, columnNames[col], got, want)
			}
		}
		if got := cell(now.Add(3*time.Second), "s", colLastsess); got != st.lastsess {
			t.Errorf("at %v + 3s: lastsess = %q, want %q", st.at, got, st.lastsess)
		}
	}
	// The backend row has the same rates as its only busy server.
	if got := cell(t0.Add(5*time.Second), "BACKEND", colRateMax); got != "10" {
		t.Errorf("backend rate_max = %q", got)
	}
	if got := cell(t0.Add(5*time.Second), "idle", colLastsess); got != "-1" {
		t.Errorf("idle server lastsess = %q", got)
	}
}

// A frontend has a session, a connection and a request rate.
func TestFrontendRates(t *testing.T) {
	be := newBackend("be", spec("s", "127.0.0.1:1"))
	fe, err := proxy.NewFrontend(proxy.FrontendConfig{Name: "fe", Default: be})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{
		Frontends: func() []*proxy.Frontend { return []*proxy.Frontend{fe} },
		Backends:  func() []*proxy.Backend { return []*proxy.Backend{be} },
	})
	t0 := time.Unix(1_700_000_000, 0)
	s.sample(t0)
	fe.Stats.Accepted.Add(2)
	fe.Stats.Requests.Add(6)
	s.sample(t0.Add(time.Second))
	r := s.snapshot(t0.Add(time.Second))[1].Frontend
	for col, want := range map[int]string{colRate: "2", colConnRate: "2", colRateMax: "2",
		colConnRateMax: "2", colReqRate: "6", colReqRateMax: "6", colReqTot: "6"} {
		if got := r.cell(col); got != want {
			t.Errorf("%s = %q, want %q", columnNames[col], got, want)
		}
	}
}

// A proxy replaced by a new one of the same name (a reload) starts from
// zero: its first counts are new, never a negative rate. Rows that went
// away are forgotten.
func TestRatesAcrossReload(t *testing.T) {
	old := newBackend("be", spec("s", "127.0.0.1:1"))
	cur := old
	s := New(Options{Backends: func() []*proxy.Backend { return []*proxy.Backend{cur} }})
	t0 := time.Unix(1_700_000_000, 0)
	old.Servers()[0].Stats.Requests.Add(100)
	s.sample(t0)
	cur = newBackend("be", spec("s", "127.0.0.1:1"))
	cur.Servers()[0].Stats.Requests.Add(7)
	s.sample(t0.Add(time.Second))
	r := s.snapshot(t0.Add(time.Second))[1].Servers[0]
	if got := r.cell(colRate); got != "7" {
		t.Errorf("rate after reload = %q, want 7", got)
	}
	cur = newBackend("be")
	s.sample(t0.Add(2 * time.Second))
	if n := len(s.rates.meters); n != 3 { // stats FRONTEND, stats BACKEND, be BACKEND
		t.Errorf("%d meters after the server left, want 3", n)
	}
}
