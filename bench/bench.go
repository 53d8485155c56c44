package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Proxy variants. Every scenario runs edgeproxy and HAProxy with its default
// http-reuse safe; the one-connection-per-request scenario adds HAProxy with
// http-reuse always, which may send a new client's first request over an
// idle server connection as edgeproxy does.
const (
	edge        = "edgeproxy"
	hapSafe     = "haproxy"
	hapAlways   = "haproxy-always"
	reuseSafe   = "safe"
	reuseAlways = "always"
)

// proxy is one running proxy instance.
type proxy struct {
	name   string
	addr   string
	proc   *child
	argv   []string
	env    []string
	config string // the pool JSON or the HAProxy config it runs
}

func (p *proxy) url(path string) string { return "http://" + p.addr + path }

func (p *proxy) command() string {
	return strings.TrimSpace(strings.Join(p.env, " ") + " " + strings.Join(p.argv, " "))
}

// record is one measured run.
type record struct {
	Scenario string             `json:"scenario"`
	Threads  int                `json:"threads"`
	Proxy    string             `json:"proxy"`
	Round    int                `json:"round"`
	Metrics  map[string]float64 `json:"metrics"`
	Command  string             `json:"command,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// scenarioInfo describes a scenario for the report.
type scenarioInfo struct {
	Name    string   `json:"name"`
	Family  string   `json:"family"`
	About   string   `json:"about"`
	Proxies []string `json:"proxies"`
	Threads int      `json:"threads"`
}

type bench struct {
	o      options
	dir    string // scratch space, removed at the end
	seed   []byte
	wrk    *wrkRunner
	nginx  *backends
	env    map[string]string
	start  time.Time
	end    time.Time
	log    func(format string, args ...any)
	notes  []string
	checks []string // verification results

	records   []record
	scenarios []scenarioInfo
	hists     map[string]*hist // scenario|threads|proxy: latency over all rounds
	configs   map[string]string
	commands  map[string]string // "scenario proxy" -> command line
}

func newBench(o options) (*bench, error) {
	seed, err := os.ReadFile(o.seed)
	if err != nil {
		return nil, fmt.Errorf("seed pool: %w", err)
	}
	base := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "edgeproxy-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{
		o: o, dir: dir, seed: seed, start: time.Now(),
		hists: map[string]*hist{}, configs: map[string]string{}, commands: map[string]string{},
	}
	b.log = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
	}
	if b.wrk, err = newWrkRunner(o.wrk, dir, o.wrkThreads); err != nil {
		return nil, err
	}
	b.env = collectEnv(o)
	return b, nil
}

func (b *bench) runAll() (err error) {
	defer func() { b.end = time.Now() }()
	b.nginx, err = startBackends(b.o.nginx, filepath.Join(b.dir, "nginx"), 4)
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	defer b.nginx.proc.stop()
	b.configs["nginx.conf"] = b.nginx.conf
	b.commands["backends"] = strings.Join(b.nginx.proc.argv, " ")
	b.log("nginx serving %s (page %d bytes)", strings.Join(b.nginx.addrs(), " "), b.nginx.pageLen)
	for _, n := range b.o.threads {
		if err := b.runThreads(n); err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
	}
	return nil
}

// startProxies starts edgeproxy (GOMAXPROCS=n) and both HAProxy variants
// (nbthread n) on free ports. All three stay up for the whole of N; the ones
// not being measured are idle.
func (b *bench) startProxies(n int) (map[string]*proxy, error) {
	ps := map[string]*proxy{}
	for _, name := range []string{edge, hapSafe, hapAlways} {
		p, err := b.startProxy(name, n, "")
		if err != nil {
			return ps, err
		}
		ps[name] = p
		b.configs[fmt.Sprintf("%s N=%d", name, n)] = p.config
		b.commands[fmt.Sprintf("proxy %s N=%d", name, n)] = p.command()
		b.log("%s N=%d pid %d on %s", name, n, p.proc.pid(), p.addr)
	}
	return ps, nil
}

// startProxy starts one proxy of the given variant with its own pool (or
// HAProxy config) on fresh ports, and waits until it listens. tag names the
// instance's scratch directory apart from others of the same variant.
func (b *bench) startProxy(name string, n int, tag string) (*proxy, error) {
	port, err1 := freePort()
	stats, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	pool, err := poolJSON(b.seed, b.nginx.addrs(), port, stats)
	if err != nil {
		return nil, err
	}
	p := &proxy{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	cfgDir := filepath.Join(b.dir, fmt.Sprintf("%s-n%d%s", name, n, tag))
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return nil, err
	}
	switch {
	case name == edge || name == hapSafe && b.o.ab():
		bin, env := b.o.edgeproxy, b.o.edgeEnv
		if name != edge {
			bin, env = b.o.baseline, b.o.baselineEnv
		}
		path := filepath.Join(cfgDir, "pool.json")
		if err := os.WriteFile(path, pool, 0o644); err != nil {
			return nil, err
		}
		p.config = string(pool)
		p.argv = edgeproxyArgs(bin, path)
		p.env = append([]string{"GOMAXPROCS=" + strconv.Itoa(n)}, env...)
	default:
		reuse := reuseSafe
		if name == hapAlways {
			reuse = reuseAlways
		}
		cfg, err := haproxyConfig(pool, n, reuse)
		if err != nil {
			return nil, fmt.Errorf("haproxy config: %w", err)
		}
		path := filepath.Join(cfgDir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		p.config = cfg
		p.argv = []string{b.o.haproxy, "-db", "-f", path}
	}
	c, err := startChild(fmt.Sprintf("%s N=%d%s", name, n, tag), p.env, p.argv...)
	if err != nil {
		return nil, err
	}
	p.proc = c
	if err := waitListening(c, p.addr, 15*time.Second); err != nil {
		c.stop()
		return nil, err
	}
	return p, nil
}

func (b *bench) runThreads(n int) error {
	ps, err := b.startProxies(n)
	defer func() {
		for _, p := range ps {
			if p.proc != nil {
				p.proc.stop()
			}
		}
	}()
	if err != nil {
		return err
	}
	if err := b.verify(n, ps); err != nil {
		return err
	}
	pair := []*proxy{ps[edge], ps[hapSafe]}
	o := b.o

	if o.scenarios["keepalive"] {
		for _, c := range o.kaConns {
			name := fmt.Sprintf("keepalive-c%d", c)
			err := b.scenario(n, scenarioInfo{Name: name, Family: "keepalive",
				About: fmt.Sprintf("wrk closed loop, %d keep-alive connections, GET / (%d-byte page): capacity and CPU per request", c, b.nginx.pageLen)},
				pair, o.duration, b.wrkRun(name, c, false))
			if err != nil {
				return err
			}
		}
	}
	if o.scenarios["rate"] {
		capacity := b.lowerCapacity(n, fmt.Sprintf("keepalive-c%d", o.kaConns[0]))
		if capacity <= 0 {
			b.notef("N=%d: fixed-rate runs skipped: no keep-alive capacity measured (run the keepalive scenario too)", n)
		}
		for _, pct := range o.ratePercent {
			if capacity <= 0 {
				break
			}
			rate := float64(int(capacity * float64(pct) / 100))
			name := fmt.Sprintf("rate-%d", pct)
			err := b.scenario(n, scenarioInfo{Name: name, Family: "rate",
				About: fmt.Sprintf("open loop at %.0f req/s (%d%% of the lower keep-alive capacity %.0f), %d keep-alive connections, latency from intended send time", rate, pct, capacity, o.rateConns)},
				pair, o.duration, b.openLoopRun(name, rate))
			if err != nil {
				return err
			}
		}
	}
	if o.scenarios["close"] {
		name := fmt.Sprintf("close-c%d", o.closeConns)
		err := b.scenario(n, scenarioInfo{Name: name, Family: "close",
			About: fmt.Sprintf("wrk closed loop, %d connections sending Connection: close (a new client connection per request)", o.closeConns)},
			[]*proxy{ps[edge], ps[hapSafe], ps[hapAlways]}, o.duration, b.wrkRun(name, o.closeConns, true))
		if err != nil {
			return err
		}
	}
	if o.scenarios["body"] {
		for _, bd := range []struct {
			name, path string
			up         int64
		}{
			{"download-1MiB", body1MPath, 0},
			{"upload-1MiB", uploadPrefix, mib},
			{"download-100MiB", body100MPath, 0},
			{"upload-100MiB", uploadPrefix, 100 * mib},
		} {
			what := "GET " + bd.path
			if bd.up > 0 {
				what = fmt.Sprintf("PUT of %d MiB (nginx WebDAV, body stored on tmpfs)", bd.up/mib)
			}
			err := b.scenario(n, scenarioInfo{Name: bd.name, Family: "body",
				About: fmt.Sprintf("%d connections, back-to-back %s: throughput and proxy peak RSS", o.bodyConns, what)},
				pair, o.bodyDuration, b.bodyRun(bd.path, bd.up))
			if err != nil {
				return err
			}
		}
	}
	if o.scenarios["idle"] {
		name := fmt.Sprintf("idle-%d", o.idleConns)
		err := b.scenarioWarm(n, scenarioInfo{Name: name, Family: "idle",
			About: fmt.Sprintf("a fresh proxy per run, warmed with 1,000 requests, then %d keep-alive connections from %d loopback addresses, one GET each, then idle: RSS per idle connection", o.idleConns, o.idleSources)},
			pair, 0, b.idleRun(n), 0)
		if err != nil {
			return err
		}
	}
	if o.scenarios["change"] && n == o.threads[0] {
		b.notef("backend set changes under load: not yet measured. edgeproxy swaps server sets live only for Marathon-discovered backends (static ADDRESS endpoints are read once; the pool file is not reloaded), and HAProxy changes servers only by a reload (Edge-LB regenerates the config and restarts with -sf) or through its runtime API, which Edge-LB does not use. A fair comparison needs the fake Marathon driving edgeproxy and a reload loop driving HAProxy.")
	}
	return nil
}

func (b *bench) notef(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, s)
	b.log("note: %s", s)
}

// runFunc measures one proxy once for d and returns its figures, the
// latency histogram if it has one, and the load command it ran.
type runFunc func(p *proxy, d time.Duration) (map[string]float64, *hist, string, error)

// scenario runs fn on every proxy: first a short unrecorded false start on
// each (warming caches, pools and the Go heap), then rounds of A, B, A, B...
// A run that fails is recorded with its error; a proxy that died ends the
// benchmark.
func (b *bench) scenario(n int, info scenarioInfo, ps []*proxy, d time.Duration, fn runFunc) error {
	return b.scenarioWarm(n, info, ps, d, fn, b.o.warmup)
}

func (b *bench) scenarioWarm(n int, info scenarioInfo, ps []*proxy, d time.Duration, fn runFunc, warmup time.Duration) error {
	info.Threads = n
	for _, p := range ps {
		info.Proxies = append(info.Proxies, p.name)
	}
	b.scenarios = append(b.scenarios, info)
	b.log("N=%d %s: %s", n, info.Name, info.About)
	if warmup > 0 {
		for _, p := range ps {
			if _, _, _, err := fn(p, warmup); err != nil {
				b.log("  warm-up on %s: %v", p.name, err)
			}
			time.Sleep(b.o.pause)
		}
	}
	for round := 1; round <= b.o.rounds; round++ {
		for _, p := range ps {
			if p.proc.exited() {
				return fmt.Errorf("%s exited: %v: %s", p.name, p.proc.err, lastLines(p.proc.out.String(), 8))
			}
			m, h, cmd, err := fn(p, d)
			r := record{Scenario: info.Name, Threads: n, Proxy: p.name, Round: round, Metrics: m}
			if err != nil {
				r.Error = err.Error()
				b.log("  round %d %s: %v", round, p.name, err)
			}
			if round == 1 {
				b.commands[fmt.Sprintf("%s N=%d %s", info.Name, n, p.name)] = cmd
			}
			b.records = append(b.records, r)
			if h != nil {
				key := histKey(info.Name, n, p.name)
				if b.hists[key] == nil {
					b.hists[key] = newHist()
				}
				b.hists[key].merge(h)
			}
			if err == nil {
				b.log("  round %d %-15s %s", round, p.name, brief(m))
			}
			time.Sleep(b.o.pause)
		}
	}
	return nil
}

func histKey(scenario string, n int, proxy string) string {
	return fmt.Sprintf("%s|%d|%s", scenario, n, proxy)
}

// brief is a one-line summary of a run for the progress log.
func brief(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"rps", "cpu_us_per_req", "p99_ms", "mb_per_s", "peak_rss_mib", "kib_per_conn", "errors"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

// lowerCapacity is the lower of the two proxies' median requests/s in a
// keep-alive scenario.
func (b *bench) lowerCapacity(n int, scenario string) float64 {
	lower := 0.0
	for _, p := range []string{edge, hapSafe} {
		m := median(b.values(scenario, n, p, "rps"))
		if m <= 0 {
			return 0
		}
		if lower == 0 || m < lower {
			lower = m
		}
	}
	return lower
}

// values collects one metric over the successful rounds of a scenario.
func (b *bench) values(scenario string, n int, proxy, metric string) []float64 {
	var out []float64
	for _, r := range b.records {
		if r.Scenario == scenario && r.Threads == n && r.Proxy == proxy && r.Error == "" {
			if v, ok := r.Metrics[metric]; ok {
				out = append(out, v)
			}
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
