package proxy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBufPoolManyOutAllocatesNothing: with as many buffers out at once as
// a busy proxy has held responses (one per active connection), a warm
// pool allocates nothing. The pool it replaced had 64 slots and allocated
// a 16 KiB buffer for most held responses with 256 connections.
func TestBufPoolManyOutAllocatesNothing(t *testing.T) {
	p := &bufPool{size: 64}
	const out = 300
	bufs := make([]*[]byte, out)
	cycle := func() {
		for i := range bufs {
			bufs[i] = p.Get()
		}
		for _, b := range bufs {
			p.Put(b)
		}
	}
	cycle()
	if n := testing.AllocsPerRun(20, cycle); n != 0 {
		t.Fatalf("%v allocations per cycle of %d buffers out at once, want 0", n, out)
	}
}

// TestBufPoolLendsLastReturnedFirst: the buffer lent is the one returned
// last, the one most likely still in cache.
func TestBufPoolLendsLastReturnedFirst(t *testing.T) {
	p := &bufPool{size: 8}
	a, b := p.Get(), p.Get()
	p.Put(a)
	p.Put(b)
	if got := p.Get(); got != b {
		t.Fatal("Get did not lend the buffer returned last")
	}
	if got := p.Get(); got != a {
		t.Fatal("second Get did not lend the buffer returned before")
	}
}

// TestBufPoolKeepsAtMostItsSlots: buffers returned beyond the pool's
// slots are dropped, and every buffer kept is lent once.
func TestBufPoolKeepsAtMostItsSlots(t *testing.T) {
	p := &bufPool{size: 8}
	var all []*[]byte
	for range bufPoolSlots + 10 {
		all = append(all, p.Get())
	}
	for _, b := range all {
		*b = (*b)[:1]
		p.Put(b)
	}
	seen := map[*[]byte]bool{}
	for range bufPoolSlots {
		b := p.Get()
		if seen[b] {
			t.Fatal("a buffer was lent twice")
		}
		seen[b] = true
		if len(*b) != 8 {
			t.Fatalf("lent buffer has length %d, want its full size 8", len(*b))
		}
	}
	if extra := p.Get(); seen[extra] {
		t.Fatal("the pool kept more buffers than its slots")
	}
}

// TestLifoPoolConcurrentUse: goroutines taking and returning values at
// once never hold the same value together, and the pool makes do with
// about as many values as are out at once.
func TestLifoPoolConcurrentUse(t *testing.T) {
	type item struct{ owned atomic.Bool }
	var p lifoPool[item]
	var made, shared atomic.Int64
	var wg sync.WaitGroup
	const goroutines, hold = 8, 6
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*item
			for i := range 20000 {
				if i%3 != 2 {
					v := p.get()
					if v == nil {
						v = new(item)
						made.Add(1)
					}
					if !v.owned.CompareAndSwap(false, true) {
						shared.Add(1)
					}
					mine = append(mine, v)
				}
				if len(mine) > 0 && (i%3 == 2 || len(mine) >= hold) {
					v := mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					v.owned.Store(false)
					p.put(v)
				}
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	if n := shared.Load(); n != 0 {
		t.Fatalf("%d times a value was lent while another goroutine held it", n)
	}
	if n := made.Load(); n > goroutines*hold {
		t.Fatalf("%d values made for at most %d out at once", n, goroutines*hold)
	}
}

// TestParkedBackendConnectionsHoldNoReadBuffer: a backend connection
// parked in its server's pool has given its read buffer back (and the
// requests that reuse it get one again).
func TestParkedBackendConnectionsHoldNoReadBuffer(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	const conns = 8
	clients := make([]*rawConn, conns)
	for i := range clients {
		clients[i] = dialRaw(t, addr)
	}
	for round := range 3 {
		// All requests at once, so that several backend connections are
		// in use, parked and reused.
		for _, c := range clients {
			c.send(get("a", "/"))
		}
		for i, c := range clients {
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("round %d, client %d: %d", round, i, resp.StatusCode)
			}
		}
	}
	// Looked at once no request runs: the race detector would take a look
	// followed by a request's attach for a race.
	srv := be.Servers()[0]
	waitFor(t, 2*time.Second, "backend connections not parked", func() bool { return srv.IdleConns() >= 1 })
	for i := range srv.pool.slots {
		if c := srv.pool.slots[i].Load(); c != nil && c.br != nil {
			t.Fatal("a parked backend connection holds a read buffer")
		}
	}
}
