//go:build linux && amd64

package proxy

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadsWaitingOn returns how many of the process's threads are in
// epoll_wait or epoll_pwait on epfd (from /proc/self/task/*/syscall).
func threadsWaitingOn(t *testing.T, epfd int) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue // running, not in a system call
		}
		nr, _ := strconv.Atoi(f[0])
		fd, _ := strconv.ParseInt(strings.TrimPrefix(f[1], "0x"), 16, 64)
		if (nr == unix.SYS_EPOLL_WAIT || nr == unix.SYS_EPOLL_PWAIT) && int(fd) == epfd {
			n++
		}
	}
	return n
}

// The parker waits for its epoll set through Go's poller. A thread
// blocked in epoll_wait on it would hold its P until the runtime's
// monitor took it back, stalling every connection with GOMAXPROCS=1.
func TestParkerBlocksNoThread(t *testing.T) {
	f, addr := parkingFrontend(t, 10*time.Second)
	c := parkOne(t, f, addr)
	if f.parker.epfd <= 0 {
		t.Fatal("parker has no epoll set")
	}
	for range 20 {
		if n := threadsWaitingOn(t, f.parker.epfd); n != 0 {
			t.Fatalf("%d threads blocked in epoll_wait on the parker's set", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Still served from the parker.
	c.send(get("a", "/"))
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after parking: %d %q", resp.StatusCode, body)
	}
}
