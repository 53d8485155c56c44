package main

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a load generator measured.
type loadResult struct {
	Requests int64 // completed exchanges with any status
	OK       int64 // 2xx
	Non2xx   int64
	SockErr  int64 // connect, read and write errors, resets
	Dropped  int64 // scheduled (open loop) but not completed in time
	Bytes    int64 // response bytes read (heads and bodies)
	Sent     int64 // request body bytes written (uploads)
	Elapsed  time.Duration
	Hist     *hist // latency; open loop: from the intended send time
	Lag      *hist // open loop: how late the scheduler released requests
}

// closedLoop runs conns connections that each repeat one request (GET path,
// or PUT of upload bytes when upload > 0) back to back for d, then finish
// the exchange in flight. It measures transfer rates of large bodies.
func closedLoop(addr, path string, upload int64, conns int, d time.Duration) loadResult {
	var res loadResult
	res.Hist = newHist()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	hardStop := stop.Add(60 * time.Second)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist()
			var r loadResult
			var conn *httpConn
			p := path
			if upload > 0 {
				p = fmt.Sprintf("%sc%d.bin", path, i)
			}
			head := getHead(p)
			if upload > 0 {
				head = putHead(p, upload)
			}
			for time.Now().Before(stop) {
				if conn == nil {
					c, err := dialHTTP(addr, nil)
					if err != nil {
						r.SockErr++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					conn = c
					_ = conn.c.SetDeadline(hardStop)
				}
				t0 := time.Now()
				resp, err := conn.do(head, upload)
				if err != nil {
					r.SockErr++
					conn.abort()
					conn = nil
					continue
				}
				h.record(time.Since(t0))
				r.Requests++
				r.Bytes += resp.bytes
				if upload > 0 {
					r.Sent += upload
				}
				if resp.status/100 == 2 {
					r.OK++
				} else {
					r.Non2xx++
				}
				if resp.close {
					conn.abort()
					conn = nil
				}
			}
			if conn != nil {
				conn.abort()
			}
			mu.Lock()
			defer mu.Unlock()
			res.Hist.merge(h)
			res.Requests += r.Requests
			res.OK += r.OK
			res.Non2xx += r.Non2xx
			res.SockErr += r.SockErr
			res.Bytes += r.Bytes
			res.Sent += r.Sent
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// closedLoopCount sends n GET requests over conns connections and returns
// how many got a 2xx.
func closedLoopCount(addr, path string, conns, n int) int64 {
	var ok, next atomic.Int64
	var wg sync.WaitGroup
	head := getHead(path)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialHTTP(addr, nil)
			if err != nil {
				return
			}
			defer c.abort()
			_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
			for next.Add(1) <= int64(n) {
				resp, err := c.do(head, 0)
				if err != nil || resp.close {
					return
				}
				if resp.status/100 == 2 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

// idleSet is a set of open keep-alive connections that each completed one
// request and now sit idle.
type idleSet struct {
	conns  []*httpConn
	failed int64
	took   time.Duration
}

// openIdle opens n connections to addr, spread over the source addresses
// 127.0.0.2 to 127.0.0.(1+sources), sends one GET on each and keeps them.
func openIdle(addr string, n, sources, parallel int) *idleSet {
	s := &idleSet{conns: make([]*httpConn, n)}
	dialers := make([]*net.Dialer, sources)
	for i := range dialers {
		dialers[i] = sourceDialer(fmt.Sprintf("127.0.0.%d", 2+i))
	}
	head := getHead(smallPath)
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				c, err := dialHTTP(addr, dialers[i%int64(sources)])
				if err != nil {
					failed.Add(1)
					continue
				}
				_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
				resp, err := c.do(head, 0)
				if err != nil || resp.status != 200 || resp.close {
					failed.Add(1)
					c.abort()
					continue
				}
				_ = c.c.SetDeadline(time.Time{})
				s.conns[i] = c
			}
		}()
	}
	wg.Wait()
	s.took = time.Since(start)
	s.failed = failed.Load()
	return s
}

// closeAll resets every connection (no TIME_WAIT left on the client).
func (s *idleSet) closeAll() {
	for _, c := range s.conns {
		if c != nil {
			c.abort()
		}
	}
}
