package proxy

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestLifoPoolDrainDropsWhatItKeeps: drain empties the pool and lets the
// collector have its values; values returned afterwards are kept again.
func TestLifoPoolDrainDropsWhatItKeeps(t *testing.T) {
	var p lifoPool[[64]byte]
	var collected atomic.Int32
	for range 10 {
		v := new([64]byte)
		runtime.AddCleanup(v, func(*atomic.Int32) { collected.Add(1) }, &collected)
		p.put(v)
	}
	if n := p.drain(); n != 10 {
		t.Fatalf("drain dropped %d values, want 10", n)
	}
	if v := p.get(); v != nil {
		t.Fatal("a drained pool lent a value")
	}
	waitFor(t, 5*time.Second, "drained values were not collected", func() bool {
		runtime.GC()
		return collected.Load() == 10
	})
	v := new([64]byte)
	p.put(v)
	if got := p.get(); got != v {
		t.Fatal("a drained pool does not keep a value returned to it")
	}
}

// TestTrimPoolsBetweenRequests: after requests the pools hold buffers;
// TrimPools drops them (TestLifoPoolDrainDropsWhatItKeeps: all of them),
// and the next requests are served as before.
func TestTrimPoolsBetweenRequests(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	request := func(round int) {
		t.Helper()
		c.send(get("a", "/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("round %d: status %d", round, resp.StatusCode)
		}
	}
	for i := range 5 {
		request(i)
	}
	srv := be.Servers()[0]
	waitFor(t, 2*time.Second, "backend connection not parked", func() bool { return srv.IdleConns() >= 1 })
	if n := TrimPools(); n == 0 {
		t.Fatal("TrimPools dropped nothing after five requests")
	}
	for i := range 5 {
		request(5 + i)
	}
}
