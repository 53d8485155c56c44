package main

import (
	"strings"
	"testing"
	"time"
)

// TestMemoryTrimmerTrimsWhenQuietAfterBusy: a trim comes in the first quiet
// interval after start-up or after a busy one, never while busy or with
// requests in flight, and once per quiet spell.
func TestMemoryTrimmerTrimsWhenQuietAfterBusy(t *testing.T) {
	var activity uint64
	var inFlight int64
	trims := 0
	tr := newMemoryTrimmer(time.Second, func() uint64 { return activity }, func() int64 { return inFlight }, func() { trims++ })
	// Activity per one-second interval (quiet is at most 100) and the
	// requests in flight as it ends.
	for i, step := range []struct {
		add      uint64
		inFlight int64
		trim     bool
	}{
		{0, 0, true},     // quiet after start-up
		{0, 0, false},    // still quiet: nothing new to give back
		{5000, 0, false}, // busy
		{101, 0, false},  // busy, just
		{100, 0, true},   // quiet, just
		{40, 0, false},   // quiet
		{20000, 0, false},
		{0, 0, true},
		{3, 2, false}, // a few large bodies streaming
		{3, 0, true},
	} {
		activity += step.add
		inFlight = step.inFlight
		before := trims
		if got := tr.tick(); got != step.trim || trims-before != btoi(step.trim) {
			t.Fatalf("interval %d (+%d, %d in flight): tick = %v with %d trims, want %v", i, step.add, step.inFlight, got, trims-before, step.trim)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTrimMemoryAfter runs the seed pool with a short --trim-memory-after:
// after a burst of requests the instance goes quiet and trims, logging what
// it gave back, and serves on; with 0 it never trims.
func TestTrimMemoryAfter(t *testing.T) {
	addrs := addrsOf(startCustomers(t, 2, nil))
	get := func(t *testing.T, url string) {
		t.Helper()
		if body := fetch(t, url); !strings.Contains(body, "Customer Application") {
			t.Fatalf("GET %s: %q", url, body)
		}
	}
	for _, tc := range []struct {
		flag string
		want int
	}{{"300ms", 1}, {"0", 0}} {
		t.Run(tc.flag, func(t *testing.T) {
			p, addr, _ := runSeed(t, addrs, "--trim-memory-after", tc.flag)
			trims := func() int { return strings.Count(p.output(), "memory trimmed after a busy spell") }
			// Start-up counts as busy: the first quiet interval trims.
			time.Sleep(time.Second)
			if got := trims(); got != tc.want {
				t.Fatalf("after start-up: %d trims, want %d\n%s", got, tc.want, p.output())
			}
			// A burst of more than 100 requests a second, then quiet: a
			// trim after the burst ended.
			deadline := time.Now().Add(400 * time.Millisecond)
			for time.Now().Before(deadline) {
				get(t, "http://"+addr+"/")
			}
			atEnd := trims()
			time.Sleep(time.Second)
			if got := trims() - atEnd; got != tc.want {
				t.Fatalf("a quiet second after a burst: %d trims, want %d\n%s", got, tc.want, p.output())
			}
			get(t, "http://"+addr+"/")
		})
	}
}
