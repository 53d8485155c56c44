package stats

import (
	"bufio"
	"encoding/csv"
	"io"
	"strings"
)

// csvHeader is the first line of the CSV export: "# " and the column names,
// each followed by a comma, as HAProxy writes it.
var csvHeader = "# " + strings.Join(columnNames[:], ",") + ",\n"

// writeCSV writes the report in HAProxy's CSV format. Like HAProxy, every
// line ends with a comma, and a value is quoted only when it holds a comma
// or a quote (RFC 4180 quoting, as the management guide describes).
func writeCSV(w io.Writer, gs []*group, v view) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(csvHeader); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	rec := make([]string, numColumns+1) // the last one stays empty
	for _, g := range gs {
		for _, r := range g.rows() {
			if r.typ == typeServer && !v.shows(r) {
				continue
			}
			for i := range numColumns {
				rec[i] = r.cell(i)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// view holds the options of a stats page request, given after the stats
// URI as HAProxy takes them: "/haproxy?stats;csv;norefresh".
type view struct {
	csv       bool // ";csv": the CSV export instead of the page
	norefresh bool // ";norefresh": no automatic reload of the page
	up        bool // ";up": only servers that are UP (or "no check")
	noMaint   bool // ";no-maint": no server in maintenance
}

// parseView reads the options of a stats request. ok is false when the
// query is not the stats URI's ("stats" first).
func parseView(rawQuery string) (v view, ok bool) {
	parts := strings.FieldsFunc(rawQuery, func(r rune) bool { return r == ';' || r == '&' })
	if len(parts) == 0 || !strings.HasPrefix(parts[0], "stats") {
		return v, false
	}
	for _, p := range parts[1:] {
		switch p {
		case "csv":
			v.csv = true
		case "norefresh":
			v.norefresh = true
		case "up":
			v.up = true
		case "no-maint":
			v.noMaint = true
		}
	}
	return v, true
}

// shows reports whether a server row passes the view's filters.
func (v view) shows(r *row) bool {
	st := r.status
	if v.up && !usable(st) {
		return false
	}
	return !v.noMaint || st != "MAINT"
}

// query renders the view as the part after "?", for the page's links.
func (v view) query() string {
	q := "stats"
	if v.csv {
		q += ";csv"
	}
	if v.norefresh {
		q += ";norefresh"
	}
	if v.up {
		q += ";up"
	}
	if v.noMaint {
		q += ";no-maint"
	}
	return q
}
