package proxy

import "sync/atomic"

// bufPoolSlots is how many values a lifoPool keeps. A held response's
// buffer is out from its write to the next read (with batched writes, to
// the flusher's next round), a backend connection's read buffer from the
// request to the end of the response, so a busy proxy has about one of
// each out per active connection at once: a few hundred in a closed-loop
// benchmark. Beyond this many, the values returned are left to the
// collector.
const bufPoolSlots = 1024

// lifoPool lends values, last returned first lent (the one most likely
// still in cache), without a lock and, once warm, without allocating, race
// detector or not (sync.Pool drops values at random under the race
// detector and at every collection). get and put cost a few
// compare-and-swaps whatever the number of values out.
//
// The values sit in numbered slots. Two lock-free stacks of slot numbers
// say which slots hold a value (full) and which are empty (free); slot
// numbers are handed out once, the first time a value needs one.
type lifoPool[T any] struct {
	full  slotStack
	free  slotStack
	made  atomic.Uint32 // slots numbered so far
	slots [bufPoolSlots]atomic.Pointer[T]
}

// get returns the value returned last, or nil when the pool is empty.
func (p *lifoPool[T]) get() *T {
	i, ok := p.full.pop()
	if !ok {
		return nil
	}
	v := p.slots[i].Swap(nil)
	p.free.push(i)
	return v
}

// put keeps v for the next get, or drops it when all slots are full.
func (p *lifoPool[T]) put(v *T) {
	i, ok := p.free.pop()
	if !ok {
		if p.made.Load() >= bufPoolSlots {
			return
		}
		if i = p.made.Add(1) - 1; i >= bufPoolSlots {
			return
		}
	}
	p.slots[i].Store(v)
	p.full.push(i)
}

// drain drops every value the pool keeps, leaving them to the collector,
// and returns how many there were. Values out are kept again as they come
// back.
func (p *lifoPool[T]) drain() int {
	n := 0
	for p.get() != nil {
		n++
	}
	return n
}

// bufPool lends byte buffers of one size.
type bufPool struct {
	size int
	lifo lifoPool[[]byte]
}

func (p *bufPool) Get() *[]byte {
	if b := p.lifo.get(); b != nil {
		return b
	}
	b := make([]byte, p.size)
	return &b
}

func (p *bufPool) Put(b *[]byte) {
	*b = (*b)[:cap(*b)]
	p.lifo.put(b)
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
