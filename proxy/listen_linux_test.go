//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// acceptOne dials ln and returns the accepted end and the dialing end.
func acceptOne(t *testing.T, ln net.Listener) (accepted, dialed net.Conn) {
	t.Helper()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, d
}

// socketTimer reads the timer column of a's row in /proc/net/tcp: which
// kernel timer is pending on the socket (2: the keepalive timer, for an
// idle established one; 0: none) and when it fires, in clock ticks.
func socketTimer(t *testing.T, a net.Conn) (kind int, ticks int64) {
	t.Helper()
	hexAddr := func(addr net.Addr) string {
		ta := addr.(*net.TCPAddr)
		ip := ta.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
	}
	local, remote := hexAddr(a.LocalAddr()), hexAddr(a.RemoteAddr())
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != local || fs[2] != remote {
			continue
		}
		k, when, _ := strings.Cut(fs[5], ":")
		kind64, err1 := strconv.ParseInt(k, 16, 32)
		ticks, err2 := strconv.ParseInt(when, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("timer column %q of %s", fs[5], sc.Text())
		}
		return int(kind64), ticks
	}
	t.Fatalf("no row for %s -> %s in /proc/net/tcp", local, remote)
	return 0, 0
}

func sockopt(t *testing.T, c net.Conn, level, name int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, name) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// The keepalive set once on the listening socket reaches every accepted
// connection, with its timer running, as Go's per-connection setting did.
func TestAcceptedConnectionsHaveTCPKeepAlive(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 2 {
		a, _ := acceptOne(t, ln)
		for _, o := range []struct {
			what        string
			level, name int
			want        int
		}{
			{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
			{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
			{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9},
			{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		} {
			if got := sockopt(t, a, o.level, o.name); got != o.want {
				t.Errorf("accepted connection: %s = %d, want %d", o.what, got, o.want)
			}
		}
		// USER_HZ is 100 on Linux: 15 s is 1500 ticks.
		if kind, ticks := socketTimer(t, a); kind != 2 || ticks <= 0 || ticks > 1500 {
			t.Errorf("accepted connection: timer %d in %d ticks, want the keepalive timer (2) within 15 s", kind, ticks)
		}
	}

	// The check above tells a socket without keepalive apart.
	plain, err := (&net.ListenConfig{KeepAlive: -1}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	a, _ := acceptOne(t, plain)
	if kind, _ := socketTimer(t, a); kind != 0 {
		t.Errorf("connection without keepalive: timer %d, want none (0)", kind)
	}
}

func TestListenNamesTheAddressItCannotUse(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("second listener on %s: %v, want an error naming the address", ln.Addr(), err)
	}
}

// BenchmarkKeepAliveOptions measures what Listen saves per accepted
// connection: the four setsockopt calls of TCP keepalive, which Go makes
// on each connection a listener accepts and which Listen makes once, on the
// listening socket (go test -run '^$' -bench KeepAliveOptions ./proxy).
func BenchmarkKeepAliveOptions(b *testing.B) {
	a, _ := tcpPair(b)
	rc, err := a.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	_ = rc.Control(func(fd uintptr) {
		for b.Loop() {
			if err := setKeepAlive(int(fd), clientKeepAlive); err != nil {
				b.Fatal(err)
			}
		}
	})
}
