package e2e

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// statsCSV is one scrape of a ";csv" stats page.
type statsCSV struct {
	header string     // the first line, as sent
	names  []string   // column names, from the header
	rows   [][]string // the other lines, fields by position
}

// parseStatsCSV reads HAProxy's CSV export: "# " and the names, then one
// line per proxy or server, every line ending with a comma.
func parseStatsCSV(t testing.TB, body string) *statsCSV {
	t.Helper()
	first, rest, ok := strings.Cut(body, "\n")
	if !ok || !strings.HasPrefix(first, "# ") || !strings.HasSuffix(first, ",") {
		t.Fatalf("stats CSV does not start with a header line:\n%s", oneLine(body))
	}
	s := &statsCSV{header: first}
	s.names = strings.Split(strings.TrimSuffix(strings.TrimPrefix(first, "# "), ","), ",")
	r := csv.NewReader(strings.NewReader(rest))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("stats CSV: %v\n%s", err, body)
	}
	for i, rec := range recs {
		if len(rec) != len(s.names)+1 || rec[len(rec)-1] != "" {
			t.Fatalf("stats CSV line %d has %d fields, want %d and a trailing comma: %q", i+2, len(rec), len(s.names)+1, rec)
		}
		s.rows = append(s.rows, rec[:len(s.names)])
	}
	return s
}

// row returns the line of pxname/svname, failing the test without it.
func (s *statsCSV) row(t testing.TB, px, sv string) map[string]string {
	t.Helper()
	for _, r := range s.rows {
		if r[0] == px && r[1] == sv {
			m := make(map[string]string, len(s.names))
			for i, n := range s.names {
				m[n] = r[i]
			}
			return m
		}
	}
	t.Fatalf("stats CSV has no line %s,%s; it has %v", px, sv, s.keys())
	return nil
}

// has reports whether there is a line for pxname/svname.
func (s *statsCSV) has(px, sv string) bool {
	return slices.ContainsFunc(s.rows, func(r []string) bool { return r[0] == px && r[1] == sv })
}

// keys lists "pxname/svname" of every line, in order.
func (s *statsCSV) keys() []string {
	var k []string
	for _, r := range s.rows {
		k = append(k, r[0]+"/"+r[1])
	}
	return k
}

// series is one Prometheus sample: its metric name and labels.
type series struct {
	name   string
	labels string // sorted name="value" pairs, comma-separated
}

func (s series) String() string { return s.name + "{" + s.labels + "}" }

// promScrape is one scrape of /metrics: every sample by series, and each
// family's type.
type promScrape struct {
	values map[series]float64
	types  map[string]dto.MetricType
}

// parseProm reads the Prometheus text exposition format.
func parseProm(t testing.TB, body string) *promScrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	ps := &promScrape{values: map[series]float64{}, types: map[string]dto.MetricType{}}
	for name, f := range fams {
		ps.types[name] = f.GetType()
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(ls)
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			default:
				continue
			}
			ps.values[series{name, strings.Join(ls, ",")}] = v
		}
	}
	return ps
}

// labels renders a label set the way series keys hold it.
func labels(kv ...string) string {
	var ls []string
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	slices.Sort(ls)
	return strings.Join(ls, ",")
}

// checkRunning reports whether a row shows a health check under way
// (HAProxy's "* " before the last check status).
func (s *statsCSV) checkRunning() bool {
	col := slices.Index(s.names, "check_status")
	for _, r := range s.rows {
		if col >= 0 && strings.HasPrefix(r[col], "* ") {
			return true
		}
	}
	return false
}
