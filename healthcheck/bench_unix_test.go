//go:build unix

package healthcheck

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCheck1000 runs 1,000 TCP-checked endpoints at HAProxy's default
// inter 2s against listeners in a child process, and reports the CPU this
// process used per second of wall time as a percentage of one core. Run
// it with -benchtime=1x: one run takes a warm-up interval plus the
// measured window whatever b.N is.
func BenchmarkCheck1000(b *testing.B) { benchmarkChecks(b, 1000, nil, false) }

// BenchmarkCheck1000Dialer is BenchmarkCheck1000 with the TCP checks made
// through net.Dialer, as they are outside Linux (and were before the
// prober on Linux).
func BenchmarkCheck1000Dialer(b *testing.B) { benchmarkChecks(b, 1000, nil, true) }

// BenchmarkCheck1000HTTP is BenchmarkCheck1000 with HTTP checks.
func BenchmarkCheck1000HTTP(b *testing.B) {
	benchmarkChecks(b, 1000, &HTTPCheck{Path: "/health"}, false)
}

func benchmarkChecks(b *testing.B, n int, h *HTTPCheck, goDial bool) {
	const window = 6 * time.Second
	mode := "4"
	if h != nil {
		mode = "4:http"
	}
	addrs, stop := startListenerProcess(b, mode)
	defer stop()

	var checks, failed atomic.Int64
	c := NewChecker(Options{OnCheck: func(_ *Target, r Result, _ time.Duration) {
		checks.Add(1)
		if !r.OK() {
			failed.Add(1)
		}
	}})
	defer c.Close()
	c.goDial = goDial
	cfg := Config{Enabled: true, HTTP: h}.WithDefaults()
	ts := make([]*Target, n)
	for i := range ts {
		var err error
		if ts[i], err = c.Add(addrs[i%len(addrs)], cfg); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(cfg.Inter) // every target has had its first, jittered, check

	b.ResetTimer()
	c0, t0 := checks.Load(), time.Now()
	u0, s0 := rusage(b)
	time.Sleep(window)
	c1, wall := checks.Load(), time.Since(t0)
	u1, s1 := rusage(b)
	b.StopTimer()

	cpu := u1 - u0 + s1 - s0
	rate := float64(c1-c0) / wall.Seconds()
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(100*(u1-u0).Seconds()/wall.Seconds(), "%core-user")
	b.ReportMetric(100*(s1-s0).Seconds()/wall.Seconds(), "%core-sys")
	b.ReportMetric(rate, "checks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(c1-c0, 1)), "µs-cpu/check")
	want := float64(n) / cfg.Inter.Seconds()
	if rate < want*0.8 || rate > want*1.2 {
		b.Errorf("%.0f checks/s, want about %.0f", rate, want)
	}
	if f := failed.Load(); f != 0 {
		b.Errorf("%d checks failed against healthy listeners", f)
	}
	for _, t := range ts {
		if !t.Up() {
			b.Fatalf("%s is %v", t.Addr(), t.State())
		}
	}
}

// rusage returns the user and system CPU time of this process.
func rusage(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// startListenerProcess starts this test binary as a listener process (see
// runListeners) and returns its addresses and a function that stops it.
func startListenerProcess(b *testing.B, mode string) ([]string, func()) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), listenersEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("listener process: %v", err)
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		b.Fatalf("listener process: %v", err)
	}
	var addrs []string
	for _, p := range strings.Fields(line) {
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", p))
	}
	return addrs, stop
}

// BenchmarkLoopbackConnectFloor measures what BenchmarkCheck1000 cannot
// go below on this host: the CPU of a bare blocking connect and reset
// with raw system calls to the same listener process. On loopback the
// connecting process also pays the kernel's work for the listening side
// of the handshake. %core@500/s is the floor for 1,000 targets at 2s.
// Like BenchmarkCheck1000 it does a fixed amount of work whatever b.N is.
func BenchmarkLoopbackConnectFloor(b *testing.B) {
	const connects = 5000
	addrs, stop := startListenerProcess(b, "1")
	defer stop()
	ap, err := netip.ParseAddrPort(addrs[0])
	if err != nil {
		b.Fatal(err)
	}
	sa := &syscall.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	linger := &syscall.Linger{Onoff: 1, Linger: 0}
	u0, s0 := rusage(b)
	for range connects {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, linger)
		if err := syscall.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		syscall.Close(fd)
	}
	u1, s1 := rusage(b)
	perOp := (u1 - u0 + s1 - s0) / connects
	b.ReportMetric(float64(perOp.Nanoseconds())/1e3, "µs-cpu/connect")
	b.ReportMetric(100*500*perOp.Seconds(), "%core@500/s")
}
