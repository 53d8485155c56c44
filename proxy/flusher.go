package proxy

import (
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// flusher sends the responses held on client connections (rawIO's held
// writes) in batches: one per round of the Go scheduler instead of one
// at a time as each goroutine finishes its request.
//
// With GOMAXPROCS=1 a scheduler round is what the network poller found
// ready: the goroutines of those connections run one after another, each
// reading its request or its backend's response. When each sent its own
// response on the way back to the poller, the responses reached the
// clients one by one, spread over the round, and a client (wrk in bench/,
// or the kernel's wake-ups of any client on the same machine) woke up for
// each. The flusher is a goroutine that yields once when woken, so that it
// runs after the goroutines already runnable, and then sends every
// response queued meanwhile back to back, as HAProxy's event loop sends
// what one poll produced. With more than one P an idle P would run it at
// once, so batching pays only with one (docs/performance.md has the numbers).
//
// A held write is owned by whoever swaps it out of rawIO.held; sending
// on a connection in batch mode additionally takes rawIO.sending, so
// that the flusher, a finisher and the connection's own goroutine never
// interleave their bytes. The flusher never blocks: a response the
// socket does not take whole is finished by a goroutine of its own.
type flusher struct {
	head atomic.Pointer[rawIO] // queued connections, linked through next
	idle atomic.Bool           // run waits on wake
	wake chan struct{}
}

var (
	theFlusher     *flusher
	theFlusherOnce sync.Once
)

// batchFlusher returns the process's flusher, starting it on first use.
func batchFlusher() *flusher {
	theFlusherOnce.Do(func() {
		f := &flusher{wake: make(chan struct{}, 1)}
		f.idle.Store(true)
		go f.run()
		theFlusher = f
	})
	return theFlusher
}

// add queues x, whose held write is to be sent, unless it is queued.
func (f *flusher) add(x *rawIO) {
	if !x.inq.CompareAndSwap(false, true) {
		return
	}
	for {
		h := f.head.Load()
		x.next = h
		if f.head.CompareAndSwap(h, x) {
			break
		}
	}
	if f.idle.Load() && f.idle.CompareAndSwap(true, false) {
		f.wake <- struct{}{}
	}
}

func (f *flusher) run() {
	for range f.wake {
		// Let the goroutines that are runnable now finish their
		// requests, so that their responses go out in this batch.
		runtime.Gosched()
		for {
			l := f.head.Swap(nil)
			if l == nil {
				f.idle.Store(true)
				if f.head.Load() != nil && f.idle.CompareAndSwap(true, false) {
					continue
				}
				break
			}
			for l != nil {
				x := l
				l, x.next = x.next, nil
				x.inq.Store(false)
				x.sendHeld()
			}
		}
	}
}

// sendHeld sends x's held write without blocking, unless another sender
// owns the connection (it sends what is held before letting go).
func (x *rawIO) sendHeld() {
	if !x.sending.CompareAndSwap(false, true) {
		return
	}
	hp := x.held.Swap(nil)
	if hp == nil {
		x.sending.Store(false)
		return
	}
	x.fp, x.fn, x.ferr = *hp, 0, nil
	err := x.rc.Write(x.sendFn)
	n, whole := x.fn, x.fn == len(x.fp)
	x.fp = nil
	if whole || err != nil || x.ferr != nil {
		// A failed send leaves the socket broken: the connection's read
		// reports it.
		heldBufs.Put(hp)
		x.sending.Store(false)
		return
	}
	done := make(chan struct{})
	x.finished.Store(&done)
	go x.finish(hp, n, done)
}

// doSend is the flusher's write callback: one pass, never a wait.
func (x *rawIO) doSend(fd uintptr) bool {
	for x.fn < len(x.fp) {
		n, err := rawWrite(fd, x.fp[x.fn:])
		x.fn += n
		if err != nil {
			if err != syscall.EAGAIN {
				x.ferr = err
			}
			break
		}
	}
	return true
}

// finish sends the rest of a held write the socket did not take whole,
// waiting for it as a blocking write does (the write deadline holds), and
// then anything held meanwhile, before it lets go of the connection.
func (x *rawIO) finish(hp *[]byte, off int, done chan struct{}) {
	for hp != nil {
		b := (*hp)[off:]
		var werr error
		err := x.rc.Write(func(fd uintptr) bool {
			for len(b) > 0 {
				n, err := rawWrite(fd, b)
				b = b[n:]
				if err == syscall.EAGAIN {
					return false
				}
				if err != nil {
					werr = err
					return true
				}
			}
			return true
		})
		heldBufs.Put(hp)
		if err != nil || werr != nil {
			break
		}
		hp, off = x.held.Swap(nil), 0
	}
	x.finished.Store(nil)
	x.sending.Store(false)
	close(done)
	if x.held.Load() != nil {
		x.batch.add(x)
	}
}

// acquireSend waits until the connection's goroutine may send: no
// flusher or finisher is sending on it.
func (x *rawIO) acquireSend() {
	for !x.sending.CompareAndSwap(false, true) {
		if ch := x.finished.Load(); ch != nil {
			<-*ch
		} else {
			runtime.Gosched() // the flusher is in one non-blocking write
		}
	}
}
