package main

import (
	"flag"
	"fmt"
	"io"
	"time"
)

// holdCmd is "bench hold": it opens idle keep-alive connections to a
// running proxy (one GET / each, then idle, as the idle scenario does),
// holds them, closes them, and prints the proxy's RSS all along. It shows
// what the idle scenario's single reading does not: memory when idle
// connections expire or close together, and how long the proxy keeps it
// (docs/architecture.md, "Memory after a busy spell").
func holdCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench hold", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "proxy address (host:port)")
	pid := fs.Int("pid", 0, "proxy process whose RSS to print")
	conns := fs.Int("conns", 9800, "idle keep-alive connections")
	sources := fs.Int("sources", 8, "loopback source addresses (127.0.0.2 up)")
	hold := fs.Duration("for", 30*time.Second, "how long to hold the connections")
	after := fs.Duration("after", 0, "how long to go on printing after closing them")
	every := fs.Duration("every", time.Second, "time between RSS readings")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *addr == "" || *pid <= 0 || *conns <= 0 || *every <= 0 {
		fmt.Fprintln(stderr, "bench hold: -addr, -pid, -conns and -every are required and positive")
		return 2
	}
	start := time.Now()
	rss := func(what string) bool {
		v, err := procStatus(*pid, "VmRSS")
		if err != nil {
			fmt.Fprintf(stderr, "bench hold: %v\n", err)
			return false
		}
		fmt.Fprintf(stdout, "%8.1fs  rss %7.1f MiB  %s\n", time.Since(start).Seconds(), float64(v)*toMiB, what)
		return true
	}
	if !rss("before") {
		return 1
	}
	set := openIdle(*addr, *conns, *sources, 64)
	open := 0
	for _, c := range set.conns {
		if c != nil {
			open++
		}
	}
	ok := rss(fmt.Sprintf("%d connections open and idle (%d failed, %.1fs to open)", open, set.failed, set.took.Seconds()))
	for end := time.Now().Add(*hold); ok && time.Now().Before(end); {
		time.Sleep(min(*every, time.Until(end)))
		ok = rss("held")
	}
	set.closeAll()
	if ok {
		ok = rss("closed")
	}
	for end := time.Now().Add(*after); ok && time.Now().Before(end); {
		time.Sleep(min(*every, time.Until(end)))
		ok = rss("after")
	}
	if !ok {
		return 1
	}
	if open == 0 {
		fmt.Fprintln(stderr, "bench hold: no connection could be opened")
		return 1
	}
	return 0
}
