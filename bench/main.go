// Command bench compares edgeproxy with HAProxy on this machine: the same
// Edge-LB pool (the seed's "Customer Application" backend, four nginx
// servers on loopback) served by edgeproxy with GOMAXPROCS=N and by HAProxy
// with nbthread N, under keep-alive capacity, fixed-rate latency, one
// connection per request, large bodies and many idle connections, each
// scenario run on both proxies in alternation. It writes a Markdown report,
// the raw results as JSON and a chart of the ratios into -out.
//
// Run it from the module root after scripts/install-bench-deps.sh and
// building bin/edgeproxy; bench/README.md explains the method.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	out, edgeproxy, haproxy, nginx, wrk, seed string

	threads   []int
	scenarios map[string]bool

	duration, bodyDuration, warmup, pause, drain time.Duration
	rounds                                       int

	wrkThreads  int
	kaConns     []int
	ratePercent []int
	rateConns   int
	closeConns  int
	bodyConns   int
	idleConns   int
	idleSources int

	// edgeEnv is extra environment for edgeproxy. With baselineEnv or
	// baseline set, the run is an A/B of two edgeproxy setups: the
	// baseline takes HAProxy's place (http-reuse always stays HAProxy).
	edgeEnv, baselineEnv []string
	baseline             string
}

// ab reports whether the run compares edgeproxy with an edgeproxy
// baseline instead of HAProxy.
func (o *options) ab() bool { return o.baseline != "" }

var allScenarios = []string{"keepalive", "rate", "close", "body", "idle", "change"}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "bench/results", "directory for the report, JSON and chart")
	fs.StringVar(&o.edgeproxy, "edgeproxy", "bin/edgeproxy", "edgeproxy binary (make build)")
	fs.StringVar(&o.haproxy, "haproxy", "haproxy", "HAProxy binary")
	fs.StringVar(&o.nginx, "nginx", "nginx", "nginx binary (backends)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk binary (closed-loop load)")
	fs.StringVar(&o.seed, "seed", "cmd/edgeproxy/seed/multi-lb-config.json", "Edge-LB pool the benchmark pool is made from")
	threads := fs.String("threads", "1,2", "comma-separated N: edgeproxy GOMAXPROCS=N against HAProxy nbthread N")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenario families to run")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured length of each request-rate run")
	fs.DurationVar(&o.bodyDuration, "body-duration", 2*time.Second, "measured length of each large-body run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded false start per proxy before each scenario (0 = none)")
	fs.DurationVar(&o.pause, "pause", 300*time.Millisecond, "quiet time between runs")
	fs.DurationVar(&o.drain, "drain", time.Second, "open loop: time allowed after the schedule ends for queued requests")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds per scenario; each round runs every proxy once, in the same order")
	fs.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk -t")
	kac := fs.String("keepalive-conns", "50,256", "wrk -c for the keep-alive capacity runs")
	rp := fs.String("rate-percent", "25,50,75", "fixed rates as percent of the lower keep-alive capacity (first -keepalive-conns)")
	fs.IntVar(&o.rateConns, "rate-conns", 50, "open loop: keep-alive connections")
	fs.IntVar(&o.closeConns, "close-conns", 50, "wrk -c for the Connection: close runs")
	fs.IntVar(&o.bodyConns, "body-conns", 4, "parallel connections moving large bodies")
	fs.IntVar(&o.idleConns, "idle-conns", 10000, "idle keep-alive connections to hold open")
	fs.IntVar(&o.idleSources, "idle-sources", 8, "loopback source addresses (127.0.0.2 up) for the idle connections")
	edgeEnv := fs.String("edgeproxy-env", "", "extra environment for edgeproxy, space-separated K=V (e.g. EDGEPROXY_BATCH_WRITES=off)")
	baseEnv := fs.String("baseline-env", "", "A/B run: edgeproxy with this environment takes HAProxy's place (see -baseline)")
	fs.StringVar(&o.baseline, "baseline", "", "A/B run: edgeproxy binary that takes HAProxy's place (default with -baseline-env: -edgeproxy)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.threads, err = intList(*threads); err != nil {
		return o, fmt.Errorf("-threads: %w", err)
	}
	if o.kaConns, err = intList(*kac); err != nil {
		return o, fmt.Errorf("-keepalive-conns: %w", err)
	}
	if o.ratePercent, err = intList(*rp); err != nil {
		return o, fmt.Errorf("-rate-percent: %w", err)
	}
	o.edgeEnv, o.baselineEnv = strings.Fields(*edgeEnv), strings.Fields(*baseEnv)
	for _, kv := range append(o.edgeEnv, o.baselineEnv...) {
		if !strings.Contains(kv, "=") {
			return o, fmt.Errorf("-edgeproxy-env, -baseline-env: %q is not K=V", kv)
		}
	}
	if o.baseline == "" && len(o.baselineEnv) > 0 {
		o.baseline = o.edgeproxy
	}
	if o.baseline != "" {
		if _, err := os.Stat(o.baseline); err != nil {
			return o, fmt.Errorf("-baseline: %w", err)
		}
	}
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if !contains(allScenarios, s) {
			return o, fmt.Errorf("-scenarios: unknown %q (have %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios[s] = true
	}
	if o.rounds < 1 || o.duration < time.Second || o.bodyDuration <= 0 {
		return o, fmt.Errorf("need -rounds >= 1 and -duration >= 1s")
	}
	for _, p := range []*string{&o.haproxy, &o.nginx, &o.wrk} {
		if *p, err = lookPath(*p); err != nil {
			return o, err
		}
	}
	if _, err := os.Stat(o.edgeproxy); err != nil {
		return o, fmt.Errorf("edgeproxy binary: %w (run make build)", err)
	}
	return o, nil
}

// lookPath finds a program on PATH or in the sbin directories, which a
// non-root PATH often lacks (Debian installs nginx and haproxy there).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (run scripts/install-bench-deps.sh)", name)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// raiseNoFile raises RLIMIT_NOFILE for the harness and the children it
// starts (they inherit it): the idle scenario holds 10,000 connections on
// the client and on the proxy side. As root the hard limit is raised too.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return want, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	// An explicit Setrlimit also makes os/exec pass this limit on, instead
	// of the soft limit the process started with.
	return lim.Cur, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) (code int) {
	if len(args) > 0 && args[0] == "hold" {
		return holdCmd(args[1:], os.Stdout, os.Stderr)
	}
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	// Whatever happens, nothing the harness started survives it.
	defer stopAll()
	defer func() {
		if r := recover(); r != nil {
			stopAll()
			panic(r)
		}
	}()
	var scratch atomic.Pointer[string]
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigc
		fmt.Fprintf(os.Stderr, "bench: %v: stopping everything it started\n", s)
		stopAll()
		if dir := scratch.Load(); dir != nil {
			os.RemoveAll(*dir)
		}
		os.Exit(130)
	}()
	nofile, err := raiseNoFile(200000)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: RLIMIT_NOFILE:", err)
		return 1
	}
	// HAProxy refuses to start unless the limit covers two descriptors per
	// connection of its global maxconn, so maxconn and the idle connection
	// count follow the limit when it cannot be raised (no CAP_SYS_RESOURCE).
	haproxyMaxConn = min(50000, int(nofile-200)/2)
	b, err := newBench(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if fit := haproxyMaxConn / 100 * 100; o.idleConns > fit-100 {
		b.notef("idle connections lowered from %d to %d: RLIMIT_NOFILE is %d here and cannot be raised, and HAProxy needs two descriptors per connection of its global maxconn (set to %d)", o.idleConns, fit-100, nofile, haproxyMaxConn)
		b.o.idleConns = fit - 100
	}
	b.env["RLIMIT_NOFILE"] = strconv.FormatUint(nofile, 10)
	scratch.Store(&b.dir)
	defer os.RemoveAll(b.dir)
	runErr := b.runAll()
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "bench:", runErr)
		code = 1
	}
	stopAll()
	paths, err := b.writeReport(runErr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: report:", err)
		return 1
	}
	for _, p := range paths {
		fmt.Println("bench: wrote", p)
	}
	return code
}
