package proxy

import (
	"sync/atomic"
	"testing"
)

type fakeHealth struct {
	up                atomic.Bool
	failures, success atomic.Int64
}

func (h *fakeHealth) Up() bool       { return h.up.Load() }
func (h *fakeHealth) ReportFailure() { h.failures.Add(1) }
func (h *fakeHealth) ReportSuccess() { h.success.Add(1) }

func TestHealthHooks(t *testing.T) {
	good := startBackend(t, "good", nil)
	dead := deadAddr(t)
	hs := map[string]*fakeHealth{}
	var removed atomic.Int64
	be := NewBackend("b", BackendOptions{Retries: 3, Redispatch: true,
		NewHealth: func(s *Server, _ ServerSpec) Health {
			h := &fakeHealth{}
			h.up.Store(true)
			hs[s.Addr] = h
			return h
		},
		ServerRemoved: func(*Server) { removed.Add(1) },
	})
	be.SetServers([]ServerSpec{{Addr: good.addr(), Weight: 1}, {Addr: dead, Weight: 1}})
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	for range 4 {
		c.send(get("a", "/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if hs[dead].failures.Load() == 0 || hs[good.addr()].success.Load() != 4 {
		t.Fatalf("passive reports: dead failures %d, good successes %d", hs[dead].failures.Load(), hs[good.addr()].success.Load())
	}
	// A server its health calls down takes no request.
	hs[good.addr()].up.Store(false)
	before := good.requestCount()
	c.send(get("a", "/"))
	if resp, _ := c.response("GET"); resp.StatusCode != 502 {
		t.Fatalf("with the only live server down: %d", resp.StatusCode)
	}
	if good.requestCount() != before {
		t.Fatal("a server marked down got a request")
	}
	be.SetServers([]ServerSpec{{Addr: good.addr(), Weight: 1}})
	if removed.Load() != 1 {
		t.Fatalf("ServerRemoved called %d times", removed.Load())
	}
}
