//go:build linux

package healthcheck

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxHookBacklog bounds the OnCheck calls waiting for a hook that does
// not return. Beyond it OnCheck calls are dropped (state transitions never
// are), so a stuck hook costs memory, not checks.
const maxHookBacklog = 1 << 16

// hookJob is the work after one check of the prober: OnCheck, then the
// Target's pending transitions if the check claimed their delivery.
type hookJob struct {
	t       *Target
	took    time.Duration
	res     Result
	deliver bool
}

// hookRunner calls the hooks of the prober's checks on a goroutine of its
// own, in the order the checks ended, so that a slow OnCheck or OnChange
// delays other hooks but never a check. It lives as long as its loop.
//
// The goroutine sleeps on an eventfd in the Go netpoller rather than on a
// channel: waking a goroutine through a channel makes the runtime wake a
// second thread to run it, while an eventfd the loop writes is picked up
// by the loop's own thread when the loop goes back to sleep.
type hookRunner struct {
	c    *Checker
	file *os.File // the eventfd, in the Go netpoller
	rc   syscall.RawConn
	fd   int
	one  [8]byte // 1 as an eventfd counter increment
	buf  [8]byte
	read func(uintptr) bool

	mu      sync.Mutex
	queue   []hookJob
	spare   []hookJob // the other buffer: queue and spare swap
	asleep  bool      // waiting on the eventfd
	stopped bool
}

// newHookRunner returns a hookRunner; run starts it.
func newHookRunner(c *Checker, one [8]byte) (*hookRunner, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	h := &hookRunner{c: c, fd: fd, one: one, file: os.NewFile(uintptr(fd), "healthcheck-hooks")}
	if h.rc, err = h.file.SyscallConn(); err == nil {
		err = h.file.SetReadDeadline(time.Time{}) // fails if not in the netpoller
	}
	if err != nil {
		h.file.Close()
		return nil, err
	}
	h.read = h.readEventfd
	return h, nil
}

// readEventfd is the callback of RawConn.Read: it resets the eventfd, or
// reports that it was not written yet. A raw system call, unlike
// os.File.Read, does not wake the runtime's sysmon thread; see prober.
func (h *hookRunner) readEventfd(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&h.buf[0])), uintptr(len(h.buf)))
	return e != unix.EAGAIN
}

// post queues jobs, in order. It does not block.
func (h *hookRunner) post(jobs []hookJob) {
	h.mu.Lock()
	for _, j := range jobs {
		if len(h.queue) >= maxHookBacklog && !j.deliver {
			continue
		}
		h.queue = append(h.queue, j)
	}
	h.wakeLocked()
	h.mu.Unlock()
}

// stop makes run return once the queue is empty.
func (h *hookRunner) stop() {
	h.mu.Lock()
	h.stopped = true
	h.wakeLocked()
	h.mu.Unlock()
}

func (h *hookRunner) wakeLocked() {
	if h.asleep {
		h.asleep = false
		unix.RawSyscall(unix.SYS_WRITE, uintptr(h.fd), uintptr(unsafe.Pointer(&h.one[0])), uintptr(len(h.one)))
	}
}

// run calls the hooks until stop. It closes the eventfd.
func (h *hookRunner) run(wg *sync.WaitGroup) {
	defer wg.Done()
	defer h.file.Close()
	for {
		h.mu.Lock()
		if len(h.queue) == 0 {
			if h.stopped {
				h.mu.Unlock()
				return
			}
			h.asleep = true
			h.mu.Unlock()
			if err := h.rc.Read(h.read); err != nil {
				panic("healthcheck: hook eventfd: " + err.Error()) // a bug: only run closes it
			}
			continue
		}
		jobs := h.queue
		h.queue, h.spare = h.spare, nil
		h.mu.Unlock()

		for i := range jobs {
			j := &jobs[i]
			if h.c.onCheck != nil {
				h.c.onCheck(j.t, j.res, j.took)
			}
			if j.deliver {
				j.t.deliver()
			}
			*j = hookJob{} // let removed Targets go
		}

		h.mu.Lock()
		h.spare = jobs[:0]
		h.mu.Unlock()
	}
}
