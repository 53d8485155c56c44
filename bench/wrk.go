package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkReport is the Lua done() hook that prints wrk's exact totals as one
// JSON line (its text summary rounds the byte count). Latencies are in µs.
const wrkReport = `-- Prints wrk's totals as one JSON line for the benchmark harness.
done = function(s, lat, req)
  io.write(string.format(
    "BENCHJSON {\"duration_us\":%d,\"requests\":%d,\"bytes\":%d," ..
    "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d," ..
    "\"mean_us\":%.1f,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}\n",
    s.duration, s.requests, s.bytes,
    s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    lat.mean, lat:percentile(50), lat:percentile(99), lat:percentile(99.9), lat.max))
end
`

// wrkResult is one wrk run's totals.
type wrkResult struct {
	DurationUS int64   `json:"duration_us"`
	Requests   int64   `json:"requests"`
	Bytes      int64   `json:"bytes"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"` // responses other than 2xx and 3xx
	Timeout    int64   `json:"timeout"`
	MeanUS     float64 `json:"mean_us"`
	P50US      int64   `json:"p50_us"`
	P99US      int64   `json:"p99_us"`
	P999US     int64   `json:"p999_us"`
	MaxUS      int64   `json:"max_us"`
}

func (w wrkResult) socketErrors() int64 { return w.Connect + w.Read + w.Write + w.Timeout }

// wrkRunner runs wrk with the report script.
type wrkRunner struct {
	bin     string
	script  string
	threads int
}

func newWrkRunner(bin, dir string, threads int) (*wrkRunner, error) {
	script := filepath.Join(dir, "report.lua")
	if err := os.WriteFile(script, []byte(wrkReport), 0o644); err != nil {
		return nil, err
	}
	return &wrkRunner{bin: bin, script: script, threads: threads}, nil
}

// argv is the wrk command line for a run against url.
func (w *wrkRunner) argv(url string, conns int, d time.Duration, closeConn bool) []string {
	threads := min(w.threads, conns)
	a := []string{w.bin, "-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + wrkDuration(d), "--timeout", "5s", "-s", w.script}
	if closeConn {
		a = append(a, "-H", "Connection: close")
	}
	return append(a, url)
}

func wrkDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	// wrk takes whole seconds, minutes or hours only.
	return strconv.Itoa(max(1, int((d+time.Second/2)/time.Second))) + "s"
}

func (w *wrkRunner) run(argv []string, d time.Duration) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := runChild(ctx, "wrk", nil, argv...)
	if err != nil {
		return wrkResult{}, err
	}
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "BENCHJSON "); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return r, fmt.Errorf("wrk report %q: %w", js, err)
			}
			return r, nil
		}
	}
	return wrkResult{}, fmt.Errorf("wrk printed no report: %s", lastLines(out, 6))
}
