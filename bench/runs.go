package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

const toMiB = 1.0 / mib

// childrenCPU is the CPU time of the harness's children that have been
// reaped (RUSAGE_CHILDREN).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// addCPU adds the proxy's CPU figures per unit of work (requests or MB):
// user and system time, and context switches, which tell where the cost is.
func addCPU(m map[string]float64, win windowResult, units float64, suffix string) {
	if units <= 0 {
		return
	}
	m["cpu_us_per_"+suffix] = float64(win.CPU.Microseconds()) / units
	m["user_us_per_"+suffix] = float64(win.User.Microseconds()) / units
	m["sys_us_per_"+suffix] = float64(win.Sys.Microseconds()) / units
	m["cs_per_"+suffix] = float64(win.VolCS+win.InvolCS) / units
	m["cpu_pct"] = 100 * win.CPU.Seconds() / win.Wall.Seconds()
	m["box_busy_pct"] = 100 * win.BoxBusy
}

// wrkRun measures a proxy with wrk: closed loop, keep-alive or, with
// closeConn, a new connection per request.
func (b *bench) wrkRun(scenario string, conns int, closeConn bool) runFunc {
	return func(p *proxy, d time.Duration) (map[string]float64, *hist, string, error) {
		argv := b.wrk.argv(p.url(smallPath), conns, d, closeConn)
		cmd := strings.Join(argv, " ")
		gen0 := childrenCPU()
		w := openWindow(p.proc.pid())
		r, err := b.wrk.run(argv, d)
		win := w.close()
		gen := childrenCPU() - gen0 // wrk's, the only child reaped meanwhile
		if err != nil {
			return nil, nil, cmd, err
		}
		if r.Requests == 0 {
			return nil, nil, cmd, fmt.Errorf("no request completed (socket errors %d)", r.socketErrors())
		}
		secs := float64(r.DurationUS) / 1e6
		m := map[string]float64{
			"rps":            float64(r.Requests) / secs,
			"mean_ms":        r.MeanUS / 1000,
			"p50_ms":         float64(r.P50US) / 1000,
			"p99_ms":         float64(r.P99US) / 1000,
			"p999_ms":        float64(r.P999US) / 1000,
			"peak_rss_mib":   float64(win.PeakRSS) * toMiB,
			"bytes_per_resp": float64(r.Bytes) / float64(r.Requests),
			"non2xx":         float64(r.Status),
			"socket_errors":  float64(r.socketErrors()),
			"errors":         float64(r.Status + r.socketErrors()),
			"requests":       float64(r.Requests),
			"gen_us_per_req": float64(gen.Microseconds()) / float64(r.Requests),
		}
		addCPU(m, win, float64(r.Requests), "req")
		return m, nil, cmd, nil
	}
}

// openLoopRun measures latency at a fixed rate with the open-loop generator.
func (b *bench) openLoopRun(scenario string, rate float64) runFunc {
	return func(p *proxy, d time.Duration) (map[string]float64, *hist, string, error) {
		cmd := fmt.Sprintf("bench open loop: GET %s at %.0f req/s for %v over %d keep-alive connections (drain %v)", p.url(smallPath), rate, d, b.o.rateConns, b.o.drain)
		self0, _ := procCPU(os.Getpid())
		w := openWindow(p.proc.pid())
		r, err := openLoop(p.addr, smallPath, rate, b.o.rateConns, d, b.o.drain)
		win := w.close()
		self1, _ := procCPU(os.Getpid())
		if err != nil {
			return nil, nil, cmd, err
		}
		if r.Requests == 0 {
			return nil, nil, cmd, fmt.Errorf("no request completed (socket errors %d)", r.SockErr)
		}
		h := r.Hist
		m := map[string]float64{
			"rate_target":      rate,
			"rps":              float64(r.Requests) / d.Seconds(),
			"mean_ms":          float64(h.mean()) / 1e6,
			"p50_ms":           float64(h.quantile(0.50)) / 1e6,
			"p99_ms":           float64(h.quantile(0.99)) / 1e6,
			"p999_ms":          float64(h.quantile(0.999)) / 1e6,
			"max_ms":           float64(h.max) / 1e6,
			"peak_rss_mib":     float64(win.PeakRSS) * toMiB,
			"bytes_per_resp":   float64(r.Bytes) / float64(r.Requests),
			"non2xx":           float64(r.Non2xx),
			"socket_errors":    float64(r.SockErr),
			"dropped":          float64(r.Dropped),
			"errors":           float64(r.Non2xx + r.SockErr + r.Dropped),
			"sched_lag_p99_us": float64(r.Lag.quantile(0.99)) / 1e3,
			"gen_us_per_req":   float64((self1 - self0).Microseconds()) / float64(r.Requests),
			"requests":         float64(r.Requests),
		}
		addCPU(m, win, float64(r.Requests), "req")
		return m, h, cmd, nil
	}
}

// bodyRun moves large bodies through a proxy, down (GET path) or up (PUT of
// upload bytes).
func (b *bench) bodyRun(path string, upload int64) runFunc {
	return func(p *proxy, d time.Duration) (map[string]float64, *hist, string, error) {
		verb := "GET " + p.url(path)
		if upload > 0 {
			verb = fmt.Sprintf("PUT %d bytes to %s<conn>.bin", upload, p.url(path))
		}
		cmd := fmt.Sprintf("bench closed loop: %s back to back for %v over %d keep-alive connections", verb, d, b.o.bodyConns)
		w := openWindow(p.proc.pid())
		r := closedLoop(p.addr, path, upload, b.o.bodyConns, d)
		win := w.close()
		if r.OK == 0 {
			return nil, nil, cmd, fmt.Errorf("no transfer succeeded (non-2xx %d, socket errors %d)", r.Non2xx, r.SockErr)
		}
		moved := float64(r.Bytes + r.Sent)
		m := map[string]float64{
			"mb_per_s":      moved / 1e6 / r.Elapsed.Seconds(),
			"transfers":     float64(r.OK),
			"peak_rss_mib":  float64(win.PeakRSS) * toMiB,
			"p50_ms":        float64(r.Hist.quantile(0.5)) / 1e6,
			"non2xx":        float64(r.Non2xx),
			"socket_errors": float64(r.SockErr),
			"errors":        float64(r.Non2xx + r.SockErr),
		}
		addCPU(m, win, moved/1e6, "mb")
		return m, nil, cmd, nil
	}
}

// idleRun starts a fresh instance of the proxy (a process that has served
// other scenarios keeps memory it freed, which would hide the cost of new
// connections), warms it, opens the idle connections, reads its RSS before
// and after, and closes them again.
func (b *bench) idleRun(n int) runFunc {
	return func(p *proxy, _ time.Duration) (map[string]float64, *hist, string, error) {
		conns := b.o.idleConns
		fresh, err := b.startProxy(p.name, n, "-idle")
		if err != nil {
			return nil, nil, "", err
		}
		defer fresh.proc.stop()
		cmd := fmt.Sprintf("%s\nbench: %d connections to %s from 127.0.0.2-127.0.0.%d, one GET / each, held idle; RSS from /proc/PID/status", fresh.command(), conns, fresh.addr, 1+b.o.idleSources)
		pid := fresh.proc.pid()
		// Warm-up: pooled backend connections and first-use allocations.
		warm := closedLoopCount(fresh.addr, smallPath, 8, 1000)
		time.Sleep(500 * time.Millisecond)
		rss0, err := procStatus(pid, "VmRSS")
		if err != nil {
			return nil, nil, cmd, err
		}
		cpu0, _ := procCPU(pid)
		set := openIdle(fresh.addr, conns, b.o.idleSources, 64)
		time.Sleep(500 * time.Millisecond) // settle: every connection answered and idle
		rss1, err := procStatus(pid, "VmRSS")
		cpu1, _ := procCPU(pid)
		open := 0
		for _, c := range set.conns {
			if c != nil {
				open++
			}
		}
		set.closeAll()
		if err != nil {
			return nil, nil, cmd, err
		}
		if open == 0 || warm == 0 {
			return nil, nil, cmd, fmt.Errorf("no connection could be opened (%d failed, warm-up %d)", set.failed, warm)
		}
		m := map[string]float64{
			"rss_before_mib":  float64(rss0) * toMiB,
			"rss_idle_mib":    float64(rss1) * toMiB,
			"kib_per_conn":    float64(rss1-rss0) / 1024 / float64(open),
			"open_conns":      float64(open),
			"open_s":          set.took.Seconds(),
			"cpu_us_per_conn": float64((cpu1 - cpu0).Microseconds()) / float64(open),
			"errors":          float64(set.failed),
		}
		return m, nil, cmd, nil
	}
}

// verify checks, before anything is measured, that every proxy answers as
// the backends do: 200 with the Customer Application page, round robin over
// the four servers, the 1 MiB body intact and an upload accepted. It also
// compares the response heads (the bytes each response costs) with nginx's
// own and records the differences.
func (b *bench) verify(n int, ps map[string]*proxy) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	direct, err := fetchHead(client, "http://"+b.nginx.addrs()[0]+smallPath)
	if err != nil {
		return fmt.Errorf("nginx direct: %w", err)
	}
	names := []string{edge, hapSafe, hapAlways}
	for _, name := range names {
		p := ps[name]
		seen := map[string]bool{}
		var head []string
		for i := range 8 {
			resp, err := client.Get(p.url(smallPath))
			if err != nil {
				return fmt.Errorf("verify %s: %w", name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(pageMarker)) {
				return fmt.Errorf("verify %s: got %d %q", name, resp.StatusCode, truncate(body, 80))
			}
			seen[resp.Header.Get("X-Served-By")] = true
			if i == 0 {
				head = headerNames(resp.Header)
			}
		}
		if len(seen) != 4 {
			return fmt.Errorf("verify %s: 8 requests reached %d servers, want all 4 in round robin", name, len(seen))
		}
		resp, err := client.Get(p.url(body1MPath))
		if err != nil {
			return fmt.Errorf("verify %s: %w", name, err)
		}
		got, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || got != mib {
			return fmt.Errorf("verify %s: %s gave %d with %d bytes", name, body1MPath, resp.StatusCode, got)
		}
		req, _ := http.NewRequest(http.MethodPut, p.url(uploadPrefix+"verify.bin"), bytes.NewReader(make([]byte, 64<<10)))
		resp, err = client.Do(req)
		if err != nil {
			return fmt.Errorf("verify %s: upload: %w", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("verify %s: upload gave %d", name, resp.StatusCode)
		}
		b.checks = append(b.checks, fmt.Sprintf("N=%d %s: 8× GET / → 200 with %q from all 4 servers in turn; GET %s → 1 MiB; PUT %s → %d. Response header fields: %s",
			n, name, pageMarker, body1MPath, uploadPrefix+"verify.bin", resp.StatusCode, diffHeads(direct, head)))
	}
	return nil
}

func fetchHead(c *http.Client, url string) ([]string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return headerNames(resp.Header), nil
}

func headerNames(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// diffHeads describes a proxied response's header fields against nginx's.
// Go's client hides "Connection" (hop-by-hop), so that one is not compared.
func diffHeads(direct, proxied []string) string {
	var added, removed []string
	for _, k := range proxied {
		if !contains(direct, k) {
			added = append(added, k)
		}
	}
	for _, k := range direct {
		if !contains(proxied, k) {
			removed = append(removed, k)
		}
	}
	s := strings.Join(proxied, ", ")
	if len(added) == 0 && len(removed) == 0 {
		return s + " (same as nginx direct)"
	}
	return fmt.Sprintf("%s (vs nginx direct: added %v, removed %v)", s, added, removed)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// collectEnv records what the results depend on.
func collectEnv(o options) map[string]string {
	env := map[string]string{
		"go":            runtime.Version(),
		"cpus":          fmt.Sprint(runtime.NumCPU()),
		"kernel":        readTrim("/proc/sys/kernel/osrelease"),
		"port_range":    readTrim("/proc/sys/net/ipv4/ip_local_port_range"),
		"tcp_tw_reuse":  readTrim("/proc/sys/net/ipv4/tcp_tw_reuse"),
		"somaxconn":     readTrim("/proc/sys/net/core/somaxconn"),
		"loadavg_start": readTrim("/proc/loadavg"),
		"command":       commandLine(),
		"GOGC":          os.Getenv("GOGC"),
		"GOMEMLIMIT":    os.Getenv("GOMEMLIMIT"),
		"GODEBUG":       os.Getenv("GODEBUG"),
	}
	if env["GOGC"] == "" {
		env["GOGC"] = "unset (100)"
	}
	env["host"], _ = os.Hostname()
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				env["cpu_model"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		env["memory"] = strings.Join(strings.Fields(line)[1:], " ")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := func(argv ...string) string {
		out, _ := runChild(ctx, argv[0], nil, argv...)
		line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
		return line
	}
	env["edgeproxy"] = first(o.edgeproxy, "version")
	env["haproxy"] = first(o.haproxy, "-v")
	env["nginx"] = first(o.nginx, "-v")
	env["wrk"] = first(o.wrk, "-v")
	env["git"] = first("git", "describe", "--always", "--dirty")
	return env
}

// commandLine is how the harness was started, with "go run ./bench" for the
// temporary binary go run builds.
func commandLine() string {
	argv0 := os.Args[0]
	if strings.Contains(argv0, "go-build") {
		argv0 = "go run ./bench"
	}
	return strings.Join(append([]string{argv0}, os.Args[1:]...), " ")
}

func readTrim(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(raw)), " ")
}
