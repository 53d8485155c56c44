//go:build linux

package healthcheck

import (
	"encoding/binary"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A prober runs the TCP checks of one Checker on Linux without the Go
// dial path. At 1,000 Targets and inter 2s, net.Dialer spends most of
// the CPU of a check outside the kernel's connect: a runtime timer per
// Target, a hand-off to a worker, netpoller registration of every socket,
// and wakeups of an otherwise idle process. The prober instead runs one
// loop goroutine that
//
//   - keeps every Target's next check in one timer heap, so the checks
//     align puts on one grid line start in one wakeup;
//   - issues non-blocking connects with raw system calls and, on loopback,
//     where the handshake has usually completed before connect returns,
//     finishes them at once;
//   - waits for the rest in an epoll set of its own (EPOLLOUT, one-shot),
//     reads SO_ERROR, and enforces the timeout from the same heap;
//   - closes with SO_LINGER 0, a reset, like the net.Dialer path;
//   - records the result in the Target's state machine, and hands OnCheck
//     and OnChange to a hookRunner so that no hook can stall it.
//
// How the loop sleeps decides what an idle process pays per wakeup. It
// sleeps in the Go netpoller, on its epoll descriptor, and its epoll set
// holds a timerfd armed for the next timer. The thread that wakes from
// epoll then runs the loop itself. A thread of its own blocked in
// epoll_wait would keep a P in a system call, and the runtime's sysmon
// then polls every 20µs to 10ms instead of sleeping; a Go timer (a read
// deadline) makes the runtime wake a second thread and sysmon at every
// expiry. Both cost more than the checks (see BenchmarkCheck1000).
//
// Add, Remove, passive ejection and Close reach the loop as commands in an
// inbox, with an eventfd in the epoll set to wake it. The loop starts with
// the first TCP Target and exits after workerIdle with none, or at Close.
// It and its hookRunner hold four descriptors.
type prober struct {
	c    *Checker
	base time.Time     // origin of the loop's clock (monotonic nanoseconds)
	one  [8]byte       // 1 as an eventfd counter increment
	idle time.Duration // the loop exits after this long with no Target

	mu     sync.Mutex
	loop   *probeLoop // nil when no loop runs
	inbox  []command
	woken  bool // the loop's eventfd was written since it last looked
	closed bool
	wg     sync.WaitGroup // the goroutines of the loop and its hookRunner
}

type commandOp uint8

const (
	cmdAdd    commandOp = iota // schedule a new Target's first check at at
	cmdRemove                  // forget a Target, aborting a check in flight
	cmdHurry                   // move the next check to at, unless one is in flight
)

type command struct {
	op commandOp
	t  *Target
	at int64 // on the loop's clock
}

// Markers of the loop's own descriptors in the Fd of epoll events; a
// check in flight is marked by its slot in the loop's table, which is not
// negative.
const (
	markInbox = -1 // the eventfd of the inbox
	markTimer = -2 // the timerfd
)

func newProber(c *Checker) *prober {
	p := &prober{c: c, base: time.Now(), idle: workerIdle}
	binary.NativeEndian.PutUint64(p.one[:], 1)
	return p
}

// now reads the loop's clock.
func (p *prober) now() int64 { return int64(time.Since(p.base)) }

// add schedules t's first check after first. It reports false when no
// loop can be started (out of file descriptors), and t is not scheduled.
func (p *prober) add(t *Target, first time.Duration) bool {
	return p.post(command{op: cmdAdd, t: t, at: p.now() + int64(first)})
}

// remove stops t's checks. t.mu is held.
func (p *prober) remove(t *Target) { p.post(command{op: cmdRemove, t: t}) }

// hurry moves t's next check to d from now. t.mu is held.
func (p *prober) hurry(t *Target, d time.Duration) {
	p.post(command{op: cmdHurry, t: t, at: p.now() + int64(d)})
}

// post hands cmd to the loop, starting it for an Add if none runs.
func (p *prober) post(cmd command) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loop == nil {
		if cmd.op != cmdAdd {
			return true // no loop, so no Target of this Checker in one
		}
		if p.closed || p.start() != nil {
			return false
		}
	}
	p.inbox = append(p.inbox, cmd)
	p.wakeLocked()
	return true
}

// wakeLocked makes the loop look at its inbox. p.mu is held.
func (p *prober) wakeLocked() {
	if p.loop != nil && !p.woken {
		p.woken = true
		_, _ = unix.Write(p.loop.evfd, p.one[:])
	}
}

// start creates the loop's descriptors and starts it and its hookRunner.
// p.mu is held.
func (p *prober) start() (err error) {
	l := &probeLoop{p: p, c: p.c, epfd: -1, evfd: -1, tfd: -1}
	defer func() {
		if err != nil {
			l.closeFds()
		}
	}()
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return err
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return err
	}
	if l.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: markInbox}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		return err
	}
	// Edge-triggered: one event per expiry, and the loop re-arms the
	// timer without reading it.
	ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: markTimer}
	if err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.tfd, &ev); err != nil {
		return err
	}
	// A non-blocking descriptor given to os.NewFile goes into the Go
	// netpoller; SetReadDeadline fails if it did not.
	if err = unix.SetNonblock(l.epfd, true); err != nil {
		return err
	}
	l.ep = os.NewFile(uintptr(l.epfd), "healthcheck-epoll")
	if l.rc, err = l.ep.SyscallConn(); err != nil {
		return err
	}
	if err = l.ep.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	if l.hooks, err = newHookRunner(p.c, p.one); err != nil {
		return err
	}
	l.collect = l.poll
	p.loop = l
	p.woken = false
	p.wg.Add(2)
	go l.hooks.run(&p.wg)
	go l.run()
	return nil
}

// close stops the loop, aborting the checks in flight, and waits for it
// and for the hooks of the checks that ended before.
func (p *prober) close() {
	p.mu.Lock()
	p.closed = true
	p.wakeLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

// probeLoop is one run of the prober's loop. Everything in it belongs to
// the loop goroutine but p, c, hooks and the descriptors, which do not
// change; evfd is written only under p.mu.
type probeLoop struct {
	p     *prober
	c     *Checker
	hooks *hookRunner
	ep    *os.File // epfd, in the Go netpoller
	rc    syscall.RawConn

	epfd, evfd, tfd int

	timers    timerHeap // every Target not waiting: next check, or deadline in flight
	waiting   []*Target // due, waiting for a MaxConcurrent slot
	flight    []*Target // checks in flight by slot, the Fd of their epoll events
	free      []int32   // free slots in flight
	inFlight  int
	gen       uint32 // last epoll generation handed out
	armed     int64  // when the timerfd expires; 0 when it is not armed
	expired   bool   // the timerfd expired in this round
	armedIdle bool   // the timerfd was armed p.idle ahead, with no Target
	collect   func(uintptr) bool
	events    [64]unix.EpollEvent
	n         int             // events collected
	ev        unix.EpollEvent // argument of epoll_ctl
	spec      unix.ItimerSpec // argument of timerfd_settime
	cmds      []command       // the inbox being worked through
	jobs      []hookJob       // hooks of the checks ended in this round
	buf       [8]byte
	quit      bool
}

func (l *probeLoop) run() {
	defer l.p.wg.Done()
	for {
		l.runDue(l.p.now())
		l.postHooks()
		l.wait()
		for i := range l.n {
			l.event(&l.events[i])
		}
		l.n = 0
		if l.quit {
			l.postHooks()
			l.shutdown()
			return
		}
		if l.expired && l.armedIdle && l.idle() && l.exitIdle() {
			return
		}
	}
}

// wait sleeps until an epoll event: a connect ended, a command came, or
// the timerfd expired at the next timer. With nothing to do the timer is
// set p.idle ahead; with Targets waiting for a slot at most 1ms (slots
// held by net.Dialer checks are freed without telling the loop).
func (l *probeLoop) wait() {
	l.expired = false
	now := l.p.now()
	wake := now + int64(l.p.idle)
	if len(l.timers) > 0 {
		wake = l.timers[0].at
	}
	if len(l.waiting) > 0 {
		wake = min(wake, now+int64(time.Millisecond))
	}
	if wake <= now {
		return
	}
	if wake != l.armed {
		l.arm(wake - now)
		l.armed = wake
		l.armedIdle = l.idle()
	}
	if err := l.rc.Read(l.collect); err != nil {
		panic("healthcheck: waiting for epoll: " + err.Error()) // a bug: only the loop uses ep
	}
}

// arm sets the timerfd to expire d from now; re-arming also clears an
// expiry not yet read.
func (l *probeLoop) arm(d int64) {
	l.spec.Value = unix.NsecToTimespec(d)
	unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(l.tfd), 0, uintptr(unsafe.Pointer(&l.spec)), 0, 0, 0)
}

// poll collects the ready events without blocking; it is the callback
// of RawConn.Read, which parks the loop until epfd is readable when poll
// finds nothing.
func (l *probeLoop) poll(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 || r == 0 {
		return false
	}
	l.n = int(r)
	return true
}

// postHooks hands the hooks of the checks ended in this round to the
// hookRunner.
func (l *probeLoop) postHooks() {
	if len(l.jobs) > 0 {
		l.hooks.post(l.jobs)
		clear(l.jobs)
		l.jobs = l.jobs[:0]
	}
}

// idle reports whether the loop has no Target.
func (l *probeLoop) idle() bool {
	return len(l.timers) == 0 && len(l.waiting) == 0 && l.inFlight == 0
}

// exitIdle ends the loop after p.idle with no Target, unless a command
// arrived meanwhile.
func (l *probeLoop) exitIdle() bool {
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.inbox) > 0 || p.closed {
		return false
	}
	p.loop = nil
	l.closeFds()
	l.hooks.stop()
	return true
}

// shutdown ends the loop at Close: it aborts the checks in flight.
func (l *probeLoop) shutdown() {
	for _, t := range l.flight {
		if t != nil {
			l.abort(t)
		}
	}
	p := l.p
	p.mu.Lock()
	p.loop = nil
	l.closeFds()
	p.mu.Unlock()
	l.hooks.stop()
}

// closeFds closes the loop's descriptors. p.mu is held, or the loop
// never started.
func (l *probeLoop) closeFds() {
	for _, fd := range []int{l.evfd, l.tfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	switch {
	case l.ep != nil:
		l.ep.Close()
	case l.epfd >= 0:
		unix.Close(l.epfd)
	}
}

// runDue starts the checks that are due and times out those that ran out
// of time.
func (l *probeLoop) runDue(now int64) {
	for len(l.waiting) > 0 && l.acquire() {
		t := l.waiting[0]
		n := copy(l.waiting, l.waiting[1:])
		l.waiting[n] = nil
		l.waiting = l.waiting[:n]
		t.sock.waiting = false
		l.begin(t)
	}
	for len(l.timers) > 0 && l.timers[0].at <= now {
		t := l.timers[0].t
		if t.sock.fd >= 0 {
			l.abort(t)
			l.finish(t, t.sock.timeout())
			continue
		}
		if !l.acquire() {
			l.timers.remove(t)
			t.sock.waiting = true
			l.waiting = append(l.waiting, t)
			continue
		}
		l.begin(t)
	}
}

// acquire takes a MaxConcurrent slot if one is free.
func (l *probeLoop) acquire() bool {
	select {
	case l.c.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// begin starts a check of t holding a slot. t stays in, or goes into, the
// heap with its deadline or its next check; a removed t leaves it.
func (l *probeLoop) begin(t *Target) {
	t.mu.Lock()
	removed := t.removed // a Remove whose command is still in the inbox
	t.mu.Unlock()
	if removed {
		<-l.c.sem
		l.timers.remove(t)
		return
	}
	s := t.sock
	s.start = l.p.now()
	fd, err := s.dial()
	if fd < 0 {
		<-l.c.sem
		l.finish(t, err)
		return
	}
	var slot int32
	if n := len(l.free); n > 0 {
		slot, l.free = l.free[n-1], l.free[:n-1]
	} else {
		slot = int32(len(l.flight))
		l.flight = append(l.flight, nil)
	}
	l.gen++
	l.ev = unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: slot, Pad: int32(l.gen)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), unix.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&l.ev)), 0, 0)
	if e != 0 {
		l.free = append(l.free, slot)
		closeFd(fd)
		<-l.c.sem
		l.finish(t, s.error("epoll_ctl", e))
		return
	}
	l.flight[slot] = t
	l.inFlight++
	s.fd, s.slot, s.gen = fd, slot, l.gen
	l.timers.set(t, s.start+int64(t.cfg.Timeout))
}

// event handles one epoll event.
func (l *probeLoop) event(ev *unix.EpollEvent) {
	switch ev.Fd {
	case markInbox:
		l.drainInbox()
		return
	case markTimer:
		l.expired = true
		l.armed = 0
		return
	}
	t := l.flight[ev.Fd]
	if t == nil || t.sock.gen != uint32(ev.Pad) {
		return // its check was aborted earlier in this round
	}
	fd := t.sock.fd
	l.release(t)
	l.finish(t, t.sock.connected(fd))
}

// abort closes the socket of t's check in flight.
func (l *probeLoop) abort(t *Target) {
	closeFd(t.sock.fd)
	l.release(t)
}

// release forgets t's check in flight, whose socket is or will be closed
// by the caller, and frees its slots.
func (l *probeLoop) release(t *Target) {
	s := t.sock
	l.flight[s.slot] = nil
	l.free = append(l.free, s.slot)
	s.fd = -1
	l.inFlight--
	<-l.c.sem
}

// finish records the result of t's check, queues its hooks and schedules
// the next check, as Target.run does on the net.Dialer path.
func (l *probeLoop) finish(t *Target, err error) {
	c, s := l.c, t.sock
	res := ResultL4OK
	if err != nil {
		res = ResultL4Conn
		if isTimeout(err) {
			res = ResultL4Timeout
		}
	}
	took := time.Duration(l.p.now() - s.start)
	now := c.now()
	t.mu.Lock()
	if t.removed {
		t.mu.Unlock()
		l.timers.remove(t)
		return
	}
	t.record(res, 0, err, took, now)
	deliver := t.claimDelivery()
	d := t.interval()
	t.mu.Unlock()
	if deliver || c.onCheck != nil {
		l.jobs = append(l.jobs, hookJob{t: t, took: took, res: res, deliver: deliver})
	}
	l.timers.set(t, l.p.now()+int64(align(c.spread(d), d)))
}

// drainInbox carries out the commands posted since the last look.
func (l *probeLoop) drainInbox() {
	unix.RawSyscall(unix.SYS_READ, uintptr(l.evfd), uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)))
	p := l.p
	p.mu.Lock()
	l.cmds, p.inbox = p.inbox, l.cmds[:0]
	p.woken = false
	l.quit = p.closed
	p.mu.Unlock()
	for i, cmd := range l.cmds {
		t, s := cmd.t, cmd.t.sock
		switch cmd.op {
		case cmdAdd:
			l.timers.set(t, cmd.at)
		case cmdRemove:
			if s.fd >= 0 {
				l.abort(t)
			}
			l.timers.remove(t)
			if s.waiting {
				s.waiting = false
				l.waiting = deleteTarget(l.waiting, t)
			}
		case cmdHurry: // like Timer.Reset on the net.Dialer path
			if s.fd < 0 && s.index >= 0 {
				l.timers.set(t, cmd.at)
			}
		}
		l.cmds[i] = command{}
	}
}

func deleteTarget(ts []*Target, t *Target) []*Target {
	for i, x := range ts {
		if x == t {
			n := copy(ts[i:], ts[i+1:])
			ts[i+n] = nil
			return ts[:i+n]
		}
	}
	return ts
}
