//go:build linux

package proxy

import (
	"container/heap"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parker holds idle keep-alive client connections without a goroutine or
// a buffer, as an event-driven proxy does. A connection that waited longer
// than ParkIdleAfter for its next request leaves fasthttp's serving loop
// (see lingerConn.Read); its socket goes into the parker's epoll set, and
// when the next request arrives one goroutine picks it up and hands the
// connection back to the server. Ten thousand idle connections then cost
// their sockets and a few hundred bytes of Go state each instead of a
// goroutine stack and its buffers.
//
// The loop waits for the epoll set through Go's network poller (an epoll
// set is itself pollable), not in a blocking epoll_wait: a goroutine in a
// blocking system call keeps its P until the runtime's monitor takes it
// back, which with GOMAXPROCS=1 stalled every connection for up to 10 ms
// each time the loop went back to waiting.
type parker struct {
	f *Frontend

	once     sync.Once
	stopOnce sync.Once
	epfd     int
	file     *os.File        // epfd, registered with Go's poller
	rc       syscall.RawConn // of file
	wake     int             // eventfd that wakes the loop
	err      error
	done     chan struct{}
	mu       sync.Mutex
	conns    map[int32]*lingerConn
	due      dueHeap // keep-alive deadlines of parked connections
	shut     bool
}

// dueHeap orders the parked connections by keep-alive deadline.
type dueHeap []*lingerConn

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].idleUntil.Before(h[j].idleUntil) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *dueHeap) Push(x any) {
	c := x.(*lingerConn)
	c.heapIdx = len(*h)
	*h = append(*h, c)
}
func (h *dueHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.heapIdx = -1
	return c
}

func newParker(f *Frontend) *parker {
	return &parker{f: f, conns: map[int32]*lingerConn{}, done: make(chan struct{})}
}

func (p *parker) start() {
	p.epfd, p.err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if p.err != nil {
		p.f.logf("idle connections: epoll: %v; idle connections keep their goroutine", p.err)
		close(p.done)
		return
	}
	p.wake, p.err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if p.err == nil {
		p.err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, p.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p.wake)})
	}
	if p.err != nil {
		p.f.logf("idle connections: eventfd: %v; idle connections keep their goroutine", p.err)
		unix.Close(p.epfd)
		close(p.done)
		return
	}
	if p.err = unix.SetNonblock(p.epfd, true); p.err == nil {
		// A non-blocking descriptor is registered with Go's poller.
		p.file = os.NewFile(uintptr(p.epfd), "parker epoll")
		p.rc, p.err = p.file.SyscallConn()
	}
	if p.err != nil {
		p.f.logf("idle connections: poller: %v; idle connections keep their goroutine", p.err)
		unix.Close(p.wake)
		unix.Close(p.epfd)
		close(p.done)
		return
	}
	go p.loop()
}

// park takes c, which fasthttp has just let go of, and reports whether it
// did; if not, the caller closes c.
func (p *parker) park(c *lingerConn) bool {
	p.once.Do(p.start)
	if p.err != nil {
		return false
	}
	fd := int32(-1)
	if err := c.raw.rc.Control(func(s uintptr) { fd = int32(s) }); err != nil || fd < 0 {
		return false
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return false
	}
	p.conns[fd] = c
	c.parkedFd = fd
	heap.Push(&p.due, c)
	first := p.due[0] == c
	p.mu.Unlock()
	if first {
		// The loop may be sleeping past this deadline.
		one := [8]byte{1}
		_, _ = unix.Write(p.wake, one[:])
	}
	// One-shot: the event hands the connection over exactly once.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		p.mu.Lock()
		delete(p.conns, fd)
		heap.Remove(&p.due, c.heapIdx)
		p.mu.Unlock()
		return false
	}
	c.f.Stats.Parked.Add(1)
	return true
}

// take removes the connection of fd from the set; nil if it is gone.
func (p *parker) take(fd int32) *lingerConn {
	p.mu.Lock()
	c := p.conns[fd]
	if c != nil {
		delete(p.conns, fd)
		heap.Remove(&p.due, c.heapIdx)
	}
	p.mu.Unlock()
	if c != nil {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		c.f.Stats.Parked.Add(-1)
	}
	return c
}

func (p *parker) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	var n int
	var werr error
	// poll takes what is ready without waiting; Read waits for the set
	// to become readable when nothing is.
	poll := func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		return n != 0 || werr != nil && werr != unix.EINTR
	}
	for {
		n, werr = 0, nil
		err := p.file.SetReadDeadline(p.expire(time.Now()))
		if err == nil {
			err = p.rc.Read(poll)
		}
		if err == nil {
			err = werr
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			p.f.logf("idle connections: epoll_wait: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(p.wake) {
				var buf [8]byte
				_, _ = unix.Read(p.wake, buf[:])
				p.mu.Lock()
				shut := p.shut
				p.mu.Unlock()
				if shut {
					unix.Close(p.wake)
					p.file.Close()
					return
				}
				continue
			}
			if c := p.take(ev.Fd); c != nil {
				go c.resume()
			}
		}
	}
}

// expire closes the parked connections whose keep-alive timeout passed
// and returns when the next one is due (zero: none is parked).
func (p *parker) expire(now time.Time) time.Time {
	var expired []*lingerConn
	var next time.Time
	p.mu.Lock()
	for len(p.due) > 0 {
		c := p.due[0]
		if c.idleUntil.After(now) {
			next = c.idleUntil
			break
		}
		heap.Pop(&p.due)
		delete(p.conns, c.parkedFd)
		expired = append(expired, c)
	}
	p.mu.Unlock()
	for _, c := range expired {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.parkedFd), nil)
		c.f.Stats.Parked.Add(-1)
		if !c.closeExpired() {
			go c.closeParked()
		}
	}
	return next
}

// closeAll closes every parked connection and parks no more: the
// frontend is shutting down, and they are idle.
func (p *parker) closeAll() {
	p.mu.Lock()
	p.shut = true
	var fds []int32
	for fd := range p.conns {
		fds = append(fds, fd)
	}
	p.mu.Unlock()
	for _, fd := range fds {
		if c := p.take(fd); c != nil {
			go c.closeParked()
		}
	}
	p.once.Do(func() { close(p.done) }) // never started: nothing to stop
	p.stopOnce.Do(func() {
		if p.err == nil && p.epfd > 0 {
			one := [8]byte{1}
			_, _ = unix.Write(p.wake, one[:])
		}
	})
	<-p.done
}

// parkingSupported reports whether idle connections can be parked here.
const parkingSupported = true
