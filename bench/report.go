package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// metricDef says how a figure is named, printed and judged.
type metricDef struct {
	key, label, format string
	better             int // +1 higher is better, -1 lower is better, 0 neither
}

var metricDefs = []metricDef{
	{"rate_target", "target rate (req/s)", "%.0f", 0},
	{"rps", "requests/s", "%.0f", +1},
	{"cpu_us_per_req", "proxy CPU µs/request", "%.2f", -1},
	{"user_us_per_req", "  of which user µs/request", "%.2f", -1},
	{"sys_us_per_req", "  of which system µs/request", "%.2f", -1},
	{"cs_per_req", "proxy context switches/request", "%.2f", -1},
	{"cpu_pct", "proxy CPU % of one core", "%.0f", 0},
	{"mean_ms", "latency mean (ms)", "%.3f", -1},
	{"p50_ms", "latency p50 (ms)", "%.3f", -1},
	{"p99_ms", "latency p99 (ms)", "%.3f", -1},
	{"p999_ms", "latency p99.9 (ms)", "%.3f", -1},
	{"max_ms", "latency max (ms)", "%.2f", -1},
	{"mb_per_s", "MB/s (10^6 bytes)", "%.0f", +1},
	{"transfers", "transfers", "%.0f", 0},
	{"cpu_us_per_mb", "proxy CPU µs/MB", "%.1f", -1},
	{"user_us_per_mb", "  of which user µs/MB", "%.1f", -1},
	{"sys_us_per_mb", "  of which system µs/MB", "%.1f", -1},
	{"cs_per_mb", "proxy context switches/MB", "%.2f", -1},
	{"peak_rss_mib", "proxy peak RSS (MiB)", "%.1f", -1},
	{"rss_before_mib", "RSS before (MiB)", "%.1f", 0},
	{"rss_idle_mib", "RSS with connections idle (MiB)", "%.1f", -1},
	{"kib_per_conn", "RSS per idle connection (KiB)", "%.2f", -1},
	{"open_conns", "connections held", "%.0f", 0},
	{"open_s", "time to open them (s)", "%.2f", 0},
	{"cpu_us_per_conn", "proxy CPU µs per connection (accept, one GET)", "%.1f", -1},
	{"bytes_per_resp", "bytes/response", "%.1f", 0},
	{"non2xx", "non-2xx responses", "%.0f", -1},
	{"socket_errors", "socket errors", "%.0f", -1},
	{"dropped", "scheduled, not completed", "%.0f", -1},
	{"errors", "errors, total", "%.0f", -1},
	{"sched_lag_p99_us", "generator release lag p99 (µs)", "%.0f", 0},
	{"gen_us_per_req", "load generator CPU µs/request (wrk, or the harness)", "%.1f", 0},
	{"box_busy_pct", "machine CPU busy %", "%.0f", 0},
}

func metricByKey(k string) (metricDef, bool) {
	for _, m := range metricDefs {
		if m.key == k {
			return m, true
		}
	}
	return metricDef{}, false
}

// stat is the median and spread of one figure over the rounds.
type stat struct {
	Scenario string  `json:"scenario"`
	Threads  int     `json:"threads"`
	Proxy    string  `json:"proxy"`
	Metric   string  `json:"metric"`
	Median   float64 `json:"median"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Runs     int     `json:"runs"`
}

// ratio is edgeproxy's median over an HAProxy variant's.
type ratio struct {
	Scenario string  `json:"scenario"`
	Threads  int     `json:"threads"`
	Versus   string  `json:"versus"`
	Metric   string  `json:"metric"`
	Ratio    float64 `json:"ratio"`
	Better   string  `json:"better"` // edgeproxy, haproxy or "" (within 2 % or not judged)
}

func (b *bench) stats() []stat {
	var out []stat
	for _, s := range b.scenarios {
		for _, p := range s.Proxies {
			for _, m := range metricDefs {
				v := b.values(s.Name, s.Threads, p, m.key)
				if len(v) == 0 {
					continue
				}
				sorted := append([]float64(nil), v...)
				sort.Float64s(sorted)
				out = append(out, stat{s.Name, s.Threads, p, m.key, median(v), sorted[0], sorted[len(sorted)-1], len(v)})
			}
		}
	}
	return out
}

func findStat(all []stat, scenario string, n int, proxy, metric string) (stat, bool) {
	for _, s := range all {
		if s.Scenario == scenario && s.Threads == n && s.Proxy == proxy && s.Metric == metric {
			return s, true
		}
	}
	return stat{}, false
}

func (b *bench) ratios(all []stat) []ratio {
	var out []ratio
	for _, s := range b.scenarios {
		for _, vs := range s.Proxies {
			if vs == edge {
				continue
			}
			for _, m := range metricDefs {
				e, ok1 := findStat(all, s.Name, s.Threads, edge, m.key)
				h, ok2 := findStat(all, s.Name, s.Threads, vs, m.key)
				if !ok1 || !ok2 || h.Median == 0 {
					continue
				}
				r := ratio{Scenario: s.Name, Threads: s.Threads, Versus: vs, Metric: m.key, Ratio: e.Median / h.Median}
				if m.better != 0 && math.Abs(r.Ratio-1) > 0.02 {
					if (r.Ratio > 1) == (m.better > 0) {
						r.Better = edge
					} else {
						r.Better = vs
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

func findRatio(all []ratio, scenario string, n int, vs, metric string) (ratio, bool) {
	for _, r := range all {
		if r.Scenario == scenario && r.Threads == n && r.Versus == vs && r.Metric == metric {
			return r, true
		}
	}
	return ratio{}, false
}

// writeReport writes <date>-<host>.md, .json and .png into -out.
func (b *bench) writeReport(runErr error) ([]string, error) {
	if b.end.IsZero() {
		b.end = time.Now()
	}
	b.env["loadavg_end"] = readTrim("/proc/loadavg")
	if err := os.MkdirAll(b.o.out, 0o755); err != nil {
		return nil, err
	}
	host := b.env["host"]
	if host == "" {
		host = "host"
	}
	base := filepath.Join(b.o.out, b.start.Format("2006-01-02")+"-"+host)
	st := b.stats()
	rs := b.ratios(st)

	latency := map[string][]quantilePoint{}
	for k, h := range b.hists {
		latency[k] = latencyCurve(h)
	}
	errText := ""
	if runErr != nil {
		errText = runErr.Error()
	}
	js, err := json.MarshalIndent(map[string]any{
		"started": b.start.Format(time.RFC3339), "wall_seconds": b.end.Sub(b.start).Seconds(),
		"environment": b.env, "options": b.optionsMap(), "scenarios": b.scenarios,
		"records": b.records, "stats": st, "ratios": rs, "latency_percentiles_ms": latency,
		"checks": b.checks, "notes": b.notes, "commands": b.commands, "configs": b.configs,
		"error": errText,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := []string{base + ".md", base + ".json"}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	chartErr := writeChart(base+".png", b, rs)
	if chartErr == nil {
		paths = append(paths, base+".png")
	} else {
		b.notef("chart not written: %v", chartErr)
	}
	md := b.markdown(st, rs, errText, filepath.Base(base+".png"), chartErr == nil)
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return nil, err
	}
	return paths, nil
}

type quantilePoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

var curveQuantiles = []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

func latencyCurve(h *hist) []quantilePoint {
	var out []quantilePoint
	for _, q := range curveQuantiles {
		v := h.quantile(q)
		if q == 1 {
			v = time.Duration(h.max)
		}
		out = append(out, quantilePoint{q, float64(v) / 1e6})
	}
	return out
}

func (b *bench) optionsMap() map[string]any {
	o := b.o
	var sc []string
	for _, s := range allScenarios {
		if o.scenarios[s] {
			sc = append(sc, s)
		}
	}
	return map[string]any{
		"threads": o.threads, "scenarios": sc, "duration": o.duration.String(), "body_duration": o.bodyDuration.String(),
		"warmup": o.warmup.String(), "pause": o.pause.String(), "drain": o.drain.String(), "rounds": o.rounds,
		"wrk_threads": o.wrkThreads, "keepalive_conns": o.kaConns, "rate_percent": o.ratePercent,
		"rate_conns": o.rateConns, "close_conns": o.closeConns, "body_conns": o.bodyConns,
		"idle_conns": o.idleConns, "idle_sources": o.idleSources,
	}
}

// headline lists the figures the summary table shows, if measured.
func (b *bench) headline() []struct{ scenario, vs, metric string } {
	type h = struct{ scenario, vs, metric string }
	var out []h
	for _, c := range b.o.kaConns {
		s := fmt.Sprintf("keepalive-c%d", c)
		out = append(out, h{s, hapSafe, "rps"}, h{s, hapSafe, "cpu_us_per_req"})
	}
	for _, p := range b.o.ratePercent {
		s := fmt.Sprintf("rate-%d", p)
		out = append(out, h{s, hapSafe, "p99_ms"}, h{s, hapSafe, "cpu_us_per_req"})
	}
	cl := fmt.Sprintf("close-c%d", b.o.closeConns)
	out = append(out, h{cl, hapSafe, "rps"}, h{cl, hapAlways, "rps"}, h{cl, hapSafe, "cpu_us_per_req"}, h{cl, hapAlways, "cpu_us_per_req"})
	for _, s := range []string{"download-1MiB", "upload-1MiB", "download-100MiB", "upload-100MiB"} {
		out = append(out, h{s, hapSafe, "mb_per_s"}, h{s, hapSafe, "peak_rss_mib"})
	}
	out = append(out, h{fmt.Sprintf("idle-%d", b.o.idleConns), hapSafe, "kib_per_conn"})
	return out
}

func (b *bench) markdown(st []stat, rs []ratio, errText, chartName string, haveChart bool) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	wall := b.end.Sub(b.start)
	w("# edgeproxy vs HAProxy: %s on %s\n\n", b.start.Format("2006-01-02 15:04 MST"), b.env["host"])
	w("Generated by `%s` (bench/README.md explains the method). Harness wall time %s; %d rounds per scenario, %v per request-rate run, %v per body run, %v unrecorded false start per proxy and scenario. Medians over the rounds with the min–max spread; **ratio = edgeproxy / HAProxy** (below 1 is better for time, CPU and memory, above 1 for rates).\n\n",
		b.env["command"], wall.Round(time.Second), b.o.rounds, b.o.duration, b.o.bodyDuration, b.o.warmup)
	if b.o.ab() {
		w("**A/B run:** the HAProxy columns are edgeproxy `%s` with environment `%s`, against `%s` with `%s`; only the `http-reuse always` comparison of the close scenario is HAProxy.\n\n",
			b.o.baseline, strings.Join(b.o.baselineEnv, " "), b.o.edgeproxy, strings.Join(b.o.edgeEnv, " "))
	}
	if errText != "" {
		w("**The run stopped early:** %s\n\n", errText)
	}
	if haveChart {
		w("![ratios and latency](%s)\n\n", chartName)
	}

	w("## Headline\n\n")
	w("| scenario | figure | vs |")
	for _, n := range b.o.threads {
		w(" N=%d edgeproxy | N=%d HAProxy | N=%d ratio |", n, n, n)
	}
	w("\n|---|---|---|")
	for range b.o.threads {
		w("---:|---:|---:|")
	}
	w("\n")
	for _, h := range b.headline() {
		def, _ := metricByKey(h.metric)
		row := fmt.Sprintf("| %s | %s | %s |", h.scenario, def.label, h.vs)
		any := false
		for _, n := range b.o.threads {
			e, ok1 := findStat(st, h.scenario, n, edge, h.metric)
			v, ok2 := findStat(st, h.scenario, n, h.vs, h.metric)
			r, ok3 := findRatio(rs, h.scenario, n, h.vs, h.metric)
			if !ok1 || !ok2 {
				row += " – | – | – |"
				continue
			}
			any = true
			row += fmt.Sprintf(" %s | %s | %s |", fmtv(def, e.Median), fmtv(def, v.Median), fmtRatio(r, ok3))
		}
		if any {
			w("%s\n", row)
		}
	}
	w("\nA ratio in **bold** is better for edgeproxy, in _italics_ better for HAProxy (more than 2 %% apart).\n\n")

	w("## Results by scenario\n\n")
	for _, s := range b.scenarios {
		w("### N=%d %s\n\n%s. edgeproxy with GOMAXPROCS=%d, HAProxy with nbthread %d.\n\n", s.Threads, s.Name, s.About, s.Threads, s.Threads)
		w("| figure |")
		for _, p := range s.Proxies {
			w(" %s |", p)
		}
		for _, p := range s.Proxies[1:] {
			w(" ratio vs %s |", p)
		}
		w("\n|---|")
		for range len(s.Proxies)*2 - 1 {
			w("---:|")
		}
		w("\n")
		for _, def := range metricDefs {
			row := "| " + def.label + " |"
			have := false
			for _, p := range s.Proxies {
				if v, ok := findStat(st, s.Name, s.Threads, p, def.key); ok {
					have = true
					row += fmt.Sprintf(" %s [%s–%s] |", fmtv(def, v.Median), fmtv(def, v.Min), fmtv(def, v.Max))
				} else {
					row += " – |"
				}
			}
			for _, p := range s.Proxies[1:] {
				r, ok := findRatio(rs, s.Name, s.Threads, p, def.key)
				row += " " + fmtRatio(r, ok) + " |"
			}
			if have {
				w("%s\n", row)
			}
		}
		var failed []string
		for _, r := range b.records {
			if r.Scenario == s.Name && r.Threads == s.Threads && r.Error != "" {
				failed = append(failed, fmt.Sprintf("round %d %s: %s", r.Round, r.Proxy, r.Error))
			}
		}
		if len(failed) > 0 {
			w("\nFailed runs: %s\n", strings.Join(failed, "; "))
		}
		w("\n")
	}

	w("## Verification and parity\n\n")
	for _, c := range b.checks {
		w("- %s\n", c)
	}
	w("\nBytes per response (bytes read over responses, heads included) show whether the proxies sent the same work back:\n\n")
	for _, sc := range b.scenarios {
		var parts []string
		e, ok := findStat(st, sc.Name, sc.Threads, edge, "bytes_per_resp")
		if !ok {
			continue
		}
		for _, p := range sc.Proxies[1:] {
			if h, ok := findStat(st, sc.Name, sc.Threads, p, "bytes_per_resp"); ok {
				if math.Abs(e.Median-h.Median) < 0.05 {
					parts = append(parts, fmt.Sprintf("identical to %s (%.1f)", p, h.Median))
				} else {
					parts = append(parts, fmt.Sprintf("**%+.1f bytes** against %s (%.1f vs %.1f)", e.Median-h.Median, p, e.Median, h.Median))
				}
			}
		}
		w("- N=%d %s: edgeproxy %s\n", sc.Threads, sc.Name, strings.Join(parts, ", "))
	}
	w("\n")
	if len(b.notes) > 0 {
		w("## Notes\n\n")
		for _, n := range b.notes {
			w("- %s\n", n)
		}
		w("\n")
	}

	w("## Environment\n\n| | |\n|---|---|\n")
	var keys []string
	for k := range b.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w("| %s | %s |\n", k, strings.ReplaceAll(b.env[k], "|", "\\|"))
	}
	w("| GOMAXPROCS | edgeproxy runs with GOMAXPROCS=N; the harness (load generator) with %d |\n", runtime.GOMAXPROCS(0))
	w("\n## Commands\n\nPaths under the scratch directory (%s, removed afterwards) are the generated files shown below.\n\n```\n", b.dir)
	var ck []string
	for k := range b.commands {
		ck = append(ck, k)
	}
	sort.Strings(ck)
	for _, k := range ck {
		w("# %s\n%s\n", k, b.commands[k])
	}
	w("```\n\n## Configurations\n\n")
	var cfgk []string
	for k := range b.configs {
		cfgk = append(cfgk, k)
	}
	sort.Strings(cfgk)
	for _, k := range cfgk {
		if strings.HasPrefix(k, hapAlways) || (strings.HasSuffix(k, "N=2") && !strings.HasPrefix(k, "nginx")) {
			continue // differ from the ones shown only as stated below
		}
		w("<details><summary>%s</summary>\n\n```\n%s\n```\n\n</details>\n\n", k, strings.TrimRight(b.configs[k], "\n"))
	}
	w("The haproxy-always configs differ from haproxy's only in `http-reuse always`; those for N=2 only in `nbthread 2` and the ports (the JSON report has every config).\n")
	return sb.String()
}

func fmtv(d metricDef, v float64) string { return fmt.Sprintf(d.format, v) }

func fmtRatio(r ratio, ok bool) string {
	if !ok {
		return "–"
	}
	s := fmt.Sprintf("%.2f", r.Ratio)
	switch r.Better {
	case edge:
		return "**" + s + "**"
	case "":
		return s
	default:
		return "_" + s + "_"
	}
}
