package proxy

import "sync/atomic"

// bufPoolSlots is how many buffers a bufPool keeps. A held response is out
// from its write to the next read (with batched writes, to the flusher's
// next round), so a busy proxy has about one out per active connection at
// once: a few hundred in a closed-loop benchmark. Beyond this many, the
// buffers returned are left to the collector.
const bufPoolSlots = 1024

// bufPool lends buffers of one size, last returned first lent (the one
// most likely still in cache), without a lock and, once warm, without
// allocating, race detector or not (sync.Pool drops buffers at random
// under the race detector and at every collection). Get and Put cost
// a few compare-and-swaps whatever the number of buffers out.
//
// The buffers sit in numbered slots. Two lock-free stacks of slot numbers
// say which slots hold a buffer (full) and which are empty (free); slot
// numbers are handed out once, the first time a buffer needs one.
type bufPool struct {
	size  int
	full  slotStack
	free  slotStack
	made  atomic.Uint32 // slots numbered so far
	slots [bufPoolSlots]atomic.Pointer[[]byte]
}

func (p *bufPool) Get() *[]byte {
	if i, ok := p.full.pop(); ok {
		b := p.slots[i].Swap(nil)
		p.free.push(i)
		return b
	}
	b := make([]byte, p.size)
	return &b
}

func (p *bufPool) Put(b *[]byte) {
	*b = (*b)[:cap(*b)]
	i, ok := p.free.pop()
	if !ok {
		if p.made.Load() >= bufPoolSlots {
			return
		}
		if i = p.made.Add(1) - 1; i >= bufPoolSlots {
			return
		}
	}
	p.slots[i].Store(b)
	p.full.push(i)
}

// slotStack is a Treiber stack of slot numbers below bufPoolSlots. The
// head carries a count of its changes beside the top slot, so that a pop
// that read the head before other pops and pushes put the same slot back
// on top fails its compare-and-swap instead of installing a stale next
// (the ABA problem).
type slotStack struct {
	head atomic.Uint64               // changes<<32 | top slot+1; 0 in the low half: empty
	next [bufPoolSlots]atomic.Uint32 // slot+1 below each slot in the stack; 0: none
}

func (s *slotStack) push(i uint32) {
	for {
		h := s.head.Load()
		s.next[i].Store(uint32(h))
		if s.head.CompareAndSwap(h, (h>>32+1)<<32|uint64(i+1)) {
			return
		}
	}
}

func (s *slotStack) pop() (uint32, bool) {
	for {
		h := s.head.Load()
		top := uint32(h)
		if top == 0 {
			return 0, false
		}
		below := s.next[top-1].Load()
		if s.head.CompareAndSwap(h, (h>>32+1)<<32|uint64(below)) {
			return top - 1, true
		}
	}
}
