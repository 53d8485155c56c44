package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// openLoop sends GET path to addr at a constant rate for d over conns
// keep-alive connections, and records each latency from the moment the
// request was due, not from when it was sent, so a stalled proxy is charged
// for every request that had to wait (no coordinated omission). Requests
// not completed d+drain after the start count as dropped.
//
// It is one event loop on one locked OS thread, as wrk2 is: non-blocking
// sockets in an epoll set, and a timerfd armed at the next due time. A due
// request goes out at once on an idle connection or waits in a queue for
// the next one. This costs a fraction of what a goroutine per connection
// costs (no channel hand-offs, no netpoller wake-ups), which matters when
// the generator shares two CPUs with the proxy and the backends, and the
// timerfd wakes within microseconds where Go's timers may sleep a whole
// millisecond. How late each request was released is recorded in Lag.
func openLoop(addr, path string, rate float64, conns int, d, drain time.Duration) (loadResult, error) {
	total := int64(rate * d.Seconds())
	if total < 1 || conns < 1 {
		return loadResult{}, fmt.Errorf("open loop: rate %.0f for %v over %d connections", rate, d, conns)
	}
	tcp, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return loadResult{}, err
	}
	sa := &unix.SockaddrInet4{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To4())

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0) }()

	l := &olLoop{sa: sa, head: getHead(path), conns: map[int32]*olConn{}}
	defer l.closeAll()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return loadResult{}, fmt.Errorf("epoll: %w", err)
	}
	if l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return loadResult{}, fmt.Errorf("timerfd: %w", err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.tfd)}); err != nil {
		return loadResult{}, err
	}
	// Connect first, so that set-up is not charged to the first requests.
	var idle []*olConn
	for range conns {
		c, err := l.dial()
		if err != nil {
			return loadResult{}, fmt.Errorf("open loop: connect: %w", err)
		}
		idle = append(idle, c)
	}

	res := loadResult{Hist: newHist(), Lag: newHist()}
	start := time.Now()
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	mono0 := ts.Nano() // CLOCK_MONOTONIC at start, for the timerfd
	now := func() int64 { return int64(time.Since(start)) }
	interval := float64(time.Second) / rate
	dueAt := func(i int64) int64 { return int64(float64(i) * interval) }
	deadline := int64(d + drain)

	var pending []int64 // due times of released requests not yet sent
	pendHead := 0
	released, inflight := int64(0), 0
	armed := int64(-1)
	events := make([]unix.EpollEvent, 512)

	fail := func(c *olConn) *olConn {
		// The connection broke: count the request it carried, reconnect.
		if c.busy {
			res.SockErr++
			inflight--
		}
		l.drop(c)
		nc, err := l.dial()
		if err != nil {
			res.SockErr++
			return nil
		}
		return nc
	}
	for {
		t := now()
		for released < total && dueAt(released) <= t {
			due := dueAt(released)
			res.Lag.record(time.Duration(t - due))
			pending = append(pending, due)
			released++
		}
		for pendHead < len(pending) && len(idle) > 0 {
			c := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			if c.dead {
				continue
			}
			c.due, c.busy = pending[pendHead], true
			pendHead++
			inflight++
			if n, err := unix.Write(c.fd, l.head); err != nil || n != len(l.head) {
				if nc := fail(c); nc != nil {
					idle = append(idle, nc)
				}
			}
		}
		if pendHead > 4096 && pendHead*2 > len(pending) {
			pending = append(pending[:0], pending[pendHead:]...)
			pendHead = 0
		}
		if released == total && pendHead == len(pending) && inflight == 0 {
			break
		}
		if t >= deadline {
			break
		}
		timeout := int((deadline-t)/1e6) + 1
		if released < total {
			next := dueAt(released)
			if next != armed {
				spec := unix.ItimerSpec{Value: unix.NsecToTimespec(mono0 + next)}
				if err := unix.TimerfdSettime(l.tfd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
					return res, fmt.Errorf("timerfd: %w", err)
				}
				armed = next
			}
			// A backstop in case the timer and the clock disagree.
			timeout = min(timeout, int((next-t)/1e6)+1)
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return res, fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(l.tfd) {
				var b [8]byte
				_, _ = unix.Read(l.tfd, b[:])
				armed = -1
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			done, err := c.readSome()
			if err != nil {
				if nc := fail(c); nc != nil {
					idle = append(idle, nc)
				}
				continue
			}
			if !done.complete {
				continue
			}
			res.Hist.record(time.Duration(now() - c.due))
			res.Requests++
			res.Bytes += int64(done.size)
			if done.status/100 == 2 {
				res.OK++
			} else {
				res.Non2xx++
			}
			c.busy = false
			inflight--
			if done.close {
				l.drop(c)
				if c, err = l.dial(); err != nil {
					res.SockErr++
					continue
				}
			}
			idle = append(idle, c)
		}
	}
	res.Elapsed = time.Since(start)
	res.Dropped = max(total-res.Requests-res.SockErr, 0)
	return res, nil
}

// olLoop is the open loop's event loop state.
type olLoop struct {
	sa    *unix.SockaddrInet4
	head  []byte
	epfd  int
	tfd   int
	conns map[int32]*olConn
}

// olConn is one non-blocking client connection.
type olConn struct {
	fd   int
	buf  []byte
	n    int   // bytes of the current response read so far
	due  int64 // when the request in flight was due, ns after the start
	busy bool
	dead bool // closed; its fd number may belong to another connection now
}

func (l *olLoop) dial() (*olConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, l.sa); err != nil { // blocking: loopback is quick
		unix.Close(fd)
		return nil, err
	}
	err = errors.Join(
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1),
		unix.SetNonblock(fd, true),
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}),
	)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &olConn{fd: fd, buf: make([]byte, 16<<10)}
	l.conns[int32(fd)] = c
	return c, nil
}

// drop closes a connection with a reset, leaving no TIME_WAIT behind.
func (l *olLoop) drop(c *olConn) {
	c.dead = true
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(c.fd)
	delete(l.conns, int32(c.fd))
}

func (l *olLoop) closeAll() {
	for _, c := range l.conns {
		l.drop(c)
	}
	if l.tfd > 0 {
		unix.Close(l.tfd)
	}
	if l.epfd > 0 {
		unix.Close(l.epfd)
	}
}

// readSome reads what is available and reports whether a whole response
// has arrived.
func (c *olConn) readSome() (parsedResponse, error) {
	eof := false
	for {
		if c.n == len(c.buf) {
			c.buf = append(c.buf, make([]byte, len(c.buf))...)
		}
		r, err := unix.Read(c.fd, c.buf[c.n:])
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return parsedResponse{}, err
		}
		if r == 0 {
			eof = true
			break
		}
		c.n += r
	}
	if !c.busy {
		if c.n == 0 && eof {
			return parsedResponse{}, errClosed
		}
		return parsedResponse{}, errors.New("bytes from the server with no request in flight")
	}
	p, err := parseResponse(c.buf[:c.n])
	if err != nil {
		return p, err
	}
	if !p.complete {
		if eof {
			return p, errClosed
		}
		return p, nil
	}
	if p.size != c.n {
		return p, errors.New("bytes after the response")
	}
	c.n = 0
	p.close = p.close || eof
	return p, nil
}

// parsedResponse is what parseResponse found in a buffer.
type parsedResponse struct {
	complete bool
	status   int
	size     int // head plus body
	close    bool
}

// parseResponse parses a response with a Content-Length body (or none, for
// 1xx, 204 and 304), which is all nginx and both proxies send for the page.
func parseResponse(b []byte) (parsedResponse, error) {
	var p parsedResponse
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return p, nil
	}
	head := b[:end+2]
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return p, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return p, fmt.Errorf("bad status line %q", line)
	}
	p.status, p.close = status, line[7] == '0'
	length := -1
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return p, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "transfer-encoding"):
			return p, errors.New("open loop: chunked responses are not supported")
		case asciiEqualFold(name, "connection"):
			p.close = p.close || asciiEqualFold(value, "close")
		}
	}
	switch {
	case length >= 0:
	case status/100 == 1 || status == 204 || status == 304:
		length = 0
	default:
		return p, errors.New("open loop: response without Content-Length")
	}
	p.size = end + 4 + length
	p.complete = len(b) >= p.size
	return p, nil
}
