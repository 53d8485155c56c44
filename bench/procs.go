package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// child is a process the harness started. It runs in its own process group,
// so that stopping it also ends anything it forked, and with a parent-death
// signal, so that it dies with the harness even if the harness is killed.
type child struct {
	name string
	argv []string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, valid after done
}

// children holds every child still running; stopAll ends them.
var children struct {
	sync.Mutex
	list []*child
}

// startChild starts argv[0] with env added to the harness's environment.
func startChild(name string, env []string, argv ...string) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, argv: argv, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	children.Lock()
	children.list = append(children.list, c)
	children.Unlock()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop kills the child's process group (its id is the child's pid, see
// Setpgid) and waits for the child to be reaped.
func (c *child) stop() {
	if !c.exited() {
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	children.Lock()
	defer children.Unlock()
	for i, o := range children.list {
		if o == c {
			children.list = append(children.list[:i], children.list[i+1:]...)
			break
		}
	}
}

// stopAll stops every child still registered, newest first.
func stopAll() {
	children.Lock()
	list := append([]*child(nil), children.list...)
	children.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// runChild runs a short-lived child to completion (or until ctx ends) and
// returns its combined output.
func runChild(ctx context.Context, name string, env []string, argv ...string) (string, error) {
	c, err := startChild(name, env, argv...)
	if err != nil {
		return "", err
	}
	defer c.stop()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop()
		return c.out.String(), fmt.Errorf("%s: %w", name, ctx.Err())
	}
	if c.err != nil {
		return c.out.String(), fmt.Errorf("%s: %w: %s", name, c.err, lastLines(c.out.String(), 5))
	}
	return c.out.String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat,
// read from the auxiliary vector (AT_CLKTCK); 100 on every common Linux.
var clockTicks = func() uint64 {
	const atClkTck = 17
	raw, err := os.ReadFile("/proc/self/auxv")
	if err == nil {
		for i := 0; i+16 <= len(raw); i += 16 {
			k := binary.LittleEndian.Uint64(raw[i:])
			v := binary.LittleEndian.Uint64(raw[i+8:])
			if k == atClkTck && v > 0 {
				return v
			}
		}
	}
	return 100
}()

// procCPU is a process's user plus system CPU time, summed over all its
// threads (fields 14 and 15 of /proc/PID/stat).
func procCPU(pid int) (time.Duration, error) {
	u, s, err := procUserSys(pid)
	return u + s, err
}

// procUserSys is procCPU split into user and system time.
func procUserSys(pid int) (user, sys time.Duration, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state), so field 14 (utime) is f[11].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	tick := func(t uint64) time.Duration { return time.Duration(t * uint64(time.Second) / clockTicks) }
	return tick(ut), tick(st), nil
}

// procSwitches is the number of context switches, voluntary (the thread
// blocked: futex, epoll_wait) and involuntary (preempted), summed over the
// process's current threads.
func procSwitches(pid int) (vol, invol int64) {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				vol += n
			} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				invol += n
			}
		}
	}
	return vol, invol
}

// procStatus reads one "kB" field of /proc/PID/status (VmRSS, VmHWM) in bytes.
func procStatus(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// boxCPU is the whole machine's busy and total time from /proc/stat.
type boxCPU struct{ busy, total uint64 }

func readBoxCPU() boxCPU {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return boxCPU{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	var b boxCPU
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		b.total += v
		if i != 3 && i != 4 { // idle, iowait
			b.busy += v
		}
	}
	return b
}

// window measures one process over exactly one measured interval: CPU time,
// wall time, the machine's busy share and the peak resident set.
type window struct {
	pid    int
	start  time.Time
	user0  time.Duration
	sys0   time.Duration
	vol0   int64
	inv0   int64
	box0   boxCPU
	hwmOK  bool // VmHWM was reset at the start, so it covers the window only
	maxRSS atomic.Int64
	stopc  chan struct{}
	wg     sync.WaitGroup
}

type windowResult struct {
	Wall    time.Duration
	CPU     time.Duration // user+system of the process, all threads
	User    time.Duration
	Sys     time.Duration
	VolCS   int64   // voluntary context switches
	InvolCS int64   // involuntary context switches
	BoxBusy float64 // share of the whole machine's CPU that was busy
	PeakRSS int64   // bytes
}

// openWindow starts measuring pid. Writing 5 to /proc/PID/clear_refs resets
// VmHWM (Linux 4.0+); RSS is also sampled every 20 ms in case that fails.
func openWindow(pid int) *window {
	w := &window{pid: pid, stopc: make(chan struct{})}
	w.hwmOK = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, err := procStatus(pid, "VmRSS"); err == nil && rss > w.maxRSS.Load() {
				w.maxRSS.Store(rss)
			}
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
		}
	}()
	w.vol0, w.inv0 = procSwitches(pid)
	w.user0, w.sys0, _ = procUserSys(pid)
	w.box0 = readBoxCPU()
	w.start = time.Now()
	return w
}

func (w *window) close() windowResult {
	r := windowResult{Wall: time.Since(w.start)}
	u1, s1, _ := procUserSys(w.pid)
	box1 := readBoxCPU()
	v1, i1 := procSwitches(w.pid)
	close(w.stopc)
	w.wg.Wait()
	r.User, r.Sys = u1-w.user0, s1-w.sys0
	r.CPU = r.User + r.Sys
	r.VolCS, r.InvolCS = v1-w.vol0, i1-w.inv0
	if dt := box1.total - w.box0.total; dt > 0 {
		r.BoxBusy = float64(box1.busy-w.box0.busy) / float64(dt)
	}
	r.PeakRSS = w.maxRSS.Load()
	if w.hwmOK {
		if hwm, err := procStatus(w.pid, "VmHWM"); err == nil && hwm > r.PeakRSS {
			r.PeakRSS = hwm
		}
	}
	return r
}
