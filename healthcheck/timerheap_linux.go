//go:build linux

package healthcheck

import "container/heap"

// timerHeap is a min-heap (container/heap) of Targets by time, each
// Target knowing its index. The time is kept in the heap, not behind the
// Target pointer, so that sifting does not chase pointers.
type timerHeap []timer

type timer struct {
	at int64 // on the loop's clock
	t  *Target
}

// set puts t in the heap at at, or moves it there.
func (h *timerHeap) set(t *Target, at int64) {
	i := t.sock.index
	if i < 0 {
		i = len(*h)
		t.sock.index = i
		*h = append(*h, timer{at, t})
	} else {
		(*h)[i].at = at
	}
	heap.Fix(h, i)
}

// remove takes t out of the heap, if it is in.
func (h *timerHeap) remove(t *Target) {
	if i := t.sock.index; i >= 0 {
		heap.Remove(h, i)
	}
}

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].t.sock.index, h[j].t.sock.index = i, j
}

// Push is not used: set appends and fixes, which boxes nothing.
func (h *timerHeap) Push(any) { panic("timerHeap: Push") }

// Pop returns the Target, a pointer, so that it boxes without allocating.
func (h *timerHeap) Pop() any {
	old := *h
	last := len(old) - 1
	t := old[last].t
	old[last] = timer{}
	*h = old[:last]
	t.sock.index = -1
	return t
}
