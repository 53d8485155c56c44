package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load of BenchmarkMetricsScrapeCost: each batch sends benchRequests GETs
// over benchConns keep-alive client connections, one request at a time per
// connection.
const (
	benchRequests = 20000
	benchConns    = 8
	scrapeEvery   = 100 * time.Millisecond
)

// BenchmarkMetricsScrapeCost measures what serving metrics costs the data
// path. The real binary forwards batches of benchRequests keep-alive
// requests to four backends; the batches alternate between nothing reading
// the stats listener and /metrics scraped every 100 ms (ten times a
// Prometheus that scrapes every second). Alternating within one process
// keeps the two measurements under the same conditions on a shared
// machine. It reports req/s for each and the relative cost:
//
//	go test -run '^$' -bench MetricsScrapeCost -benchtime 4x ./stats/e2e/
//
// Load generator, proxy and backends share the machine's cores, so the
// absolute numbers are the whole system's; the difference is the cost.
func BenchmarkMetricsScrapeCost(b *testing.B) {
	var svcs []service
	for i := range 4 {
		svcs = append(svcs, service{b: startBackend(b, fmt.Sprintf("b%d", i), false)})
	}
	port, statsPort := freePort(b), freePort(b)
	pool, _ := poolConfig(b, port, statsPort, "", svcs)
	proxy := startEdgeproxy(b, pool, statsPort)
	pid := proxy.cmd.Process.Pid
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", statsPort)
	drive(b, addr, 1000) // warm the connection pools

	var elapsed, cpu [2]time.Duration // without, with scraping
	var scrapes, scrapeBytes int64
	batch := func(scrape bool) {
		stop := make(chan struct{})
		var scraper sync.WaitGroup
		if scrape {
			scraper.Add(1)
			go func() {
				defer scraper.Done()
				n, size := scrapeUntil(b, metricsURL, stop)
				scrapes += n
				scrapeBytes += size
			}()
		}
		cpu0 := processCPU(b, pid)
		start := time.Now()
		drive(b, addr, benchRequests)
		d := time.Since(start)
		close(stop)
		scraper.Wait()
		k := 0
		if scrape {
			k = 1
		}
		elapsed[k] += d
		cpu[k] += processCPU(b, pid) - cpu0
	}
	i := 0
	for b.Loop() {
		// Alternate which batch goes first, so neither always runs on a
		// freshly warmed process.
		batch(i%2 == 1)
		batch(i%2 == 0)
		i++
	}
	if scrapes == 0 {
		b.Fatal("no scrape finished during the load")
	}
	// What one scrape costs edgeproxy with no load beside it: the steadiest
	// figure on a shared machine.
	const idleScrapes = 100
	c := &http.Client{Timeout: 10 * time.Second}
	cpu0 := processCPU(b, pid)
	for range idleScrapes {
		resp, err := c.Get(metricsURL)
		if err != nil {
			b.Fatalf("scrape: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	idle := processCPU(b, pid) - cpu0
	off := float64(i*benchRequests) / elapsed[0].Seconds()
	on := float64(i*benchRequests) / elapsed[1].Seconds()
	b.ReportMetric(off, "req/s-no-scrape")
	b.ReportMetric(on, "req/s-scrape-100ms")
	b.ReportMetric(100*(off-on)/off, "%-cost")
	b.ReportMetric(float64(scrapeBytes)/float64(scrapes), "B/scrape")
	// edgeproxy's own CPU time: what the scrapes cost it, whatever else
	// runs on the machine.
	n := float64(i * benchRequests)
	b.ReportMetric(float64(cpu[0].Microseconds())/n, "cpu-µs/req-no-scrape")
	b.ReportMetric(float64(cpu[1].Microseconds())/n, "cpu-µs/req-scrape-100ms")
	b.ReportMetric(float64((cpu[1]-cpu[0]).Microseconds())/1000/float64(scrapes), "cpu-ms/scrape")
	b.ReportMetric(float64(idle.Microseconds())/1000/idleScrapes, "cpu-ms/scrape-idle")
}

// processCPU is the user and system CPU time process pid has used, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s: USER_HZ on
// Linux).
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("reading edgeproxy's CPU time: %v", err)
	}
	// The command name (field 2) may hold spaces; count from after it.
	rest := string(raw[strings.LastIndexByte(string(raw), ')')+2:])
	f := strings.Fields(rest) // f[0] is field 3
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// drive sends n GETs to addr over benchConns keep-alive connections and
// fails unless every answer is 200.
func drive(b *testing.B, addr string, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchConns)
	for range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET / HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: edgeproxy-bench\r\n\r\n")
			for next.Add(1) <= int64(n) {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(req); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
					errs <- fmt.Errorf("status %d, close %v, body %v", resp.StatusCode, resp.Close, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("load: %v", err)
	}
}

// scrapeUntil reads url every scrapeEvery until stop closes, and returns
// how many scrapes completed and the bytes they read.
func scrapeUntil(b *testing.B, url string, stop <-chan struct{}) (n, size int64) {
	c := &http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(scrapeEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return n, size
		case <-t.C:
		}
		resp, err := c.Get(url)
		if err != nil {
			b.Errorf("scrape: %v", err)
			return n, size
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Errorf("scrape: %d %v", resp.StatusCode, err)
			return n, size
		}
		n++
		size += m
	}
}
