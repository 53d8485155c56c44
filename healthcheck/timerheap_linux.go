//go:build linux

package healthcheck

// timerHeap is a binary min-heap of Targets by time, each Target knowing
// its index. The time is kept in the heap, not behind the Target pointer,
// so that sifting does not chase pointers.
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
		h.up(i)
		return
	}
	(*h)[i].at = at
	if !h.down(i) {
		h.up(i)
	}
}

// remove takes t out of the heap, if it is in.
func (h *timerHeap) remove(t *Target) {
	i, last := t.sock.index, len(*h)-1
	if i < 0 {
		return
	}
	t.sock.index = -1
	if i != last {
		(*h)[i] = (*h)[last]
		(*h)[i].t.sock.index = i
	}
	(*h)[last] = timer{}
	*h = (*h)[:last]
	if i != last && !h.down(i) {
		h.up(i)
	}
}

func (h timerHeap) up(i int) {
	x := h[i]
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].at <= x.at {
			break
		}
		h[i] = h[parent]
		h[i].t.sock.index = i
		i = parent
	}
	h[i] = x
	x.t.sock.index = i
}

// down moves i towards the leaves and reports whether it moved.
func (h timerHeap) down(i int) bool {
	start, x := i, h[i]
	for {
		j := 2*i + 1
		if j >= len(h) {
			break
		}
		if r := j + 1; r < len(h) && h[r].at < h[j].at {
			j = r
		}
		if h[j].at >= x.at {
			break
		}
		h[i] = h[j]
		h[i].t.sock.index = i
		i = j
	}
	h[i] = x
	x.t.sock.index = i
	return i > start
}
