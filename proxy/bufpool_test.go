package proxy

import (
	"sync"
	"testing"
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

// TestBufPoolConcurrentUse: goroutines taking and returning buffers at
// once never hold the same buffer together (run under -race in make test).
func TestBufPoolConcurrentUse(t *testing.T) {
	p := &bufPool{size: 8}
	var wg sync.WaitGroup
	var mu sync.Mutex
	owner := map[*[]byte]int{}
	for g := 1; g <= 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				b := p.Get()
				mu.Lock()
				if o := owner[b]; o != 0 {
					mu.Unlock()
					t.Errorf("goroutine %d got a buffer goroutine %d holds", g, o)
					return
				}
				owner[b] = g
				mu.Unlock()
				(*b)[0] = byte(g)
				mu.Lock()
				delete(owner, b)
				mu.Unlock()
				p.Put(b)
			}
		}()
	}
	wg.Wait()
}
