package healthcheck

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenersEnv makes the test binary a listener process for
// BenchmarkCheck1000, so the benchmark's CPU figures count only the
// checker.
const listenersEnv = "EDGEPROXY_HEALTHCHECK_LISTENERS"

func TestMain(m *testing.M) {
	if n := os.Getenv(listenersEnv); n != "" {
		os.Exit(runListeners(n))
	}
	code := m.Run()
	if code == 0 {
		if leaked := waitNoGoroutines(3 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// runListeners serves arg ("N" or "N:http") loopback listeners: it
// prints their ports on one line, then accepts and closes connections, or
// with ":http" answers each request "200 OK" first, until stdin closes.
func runListeners(arg string) int {
	count, mode, _ := strings.Cut(arg, ":")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 || mode != "" && mode != "http" {
		fmt.Fprintf(os.Stderr, "%s=%q: want N or N:http\n", listenersEnv, arg)
		return 2
	}
	handle := func(c net.Conn) { c.Close() }
	if mode == "http" {
		handle = func(c net.Conn) {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1024)
			for have := 0; have < len(buf); {
				m, err := c.Read(buf[have:])
				have += m
				if strings.Contains(string(buf[:have]), "\r\n\r\n") {
					_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
					return
				}
				if err != nil {
					return
				}
			}
		}
	}
	var ports []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer ln.Close()
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
	}
	fmt.Println(strings.Join(ports, " "))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // returns at EOF
	return 0
}

// packageGoroutines returns the stacks of goroutines that run or were
// started by this package, except the caller's own.
func packageGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the calling goroutine
			continue
		}
		if strings.Contains(g, "edgeproxy/healthcheck.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// waitNoGoroutines polls until no goroutine of this package is left, and
// returns the leftovers when the time is up.
func waitNoGoroutines(limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		g := packageGoroutines()
		if g == "" || time.Now().After(deadline) {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
}
