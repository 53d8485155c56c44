package stats

import (
	"math"
	"strconv"
)

// Row types, as the CSV "type" column numbers them.
const (
	typeFrontend = 0
	typeBackend  = 1
	typeServer   = 2
)

// noValue marks an empty cell: HAProxy prints nothing there and the
// exporter skips it.
const noValue = math.MinInt64

// row is one line of the statistics: a frontend, a backend or a server.
// Numbers live in v, indexed by column; the few text columns have fields.
type row struct {
	typ                             int
	px, sv, status                  string
	checkStatus, checkDesc, lastChk string
	checked                         bool // a server with active health checks
	v                               [numColumns]int64
}

func newRow(typ int, pxname, svname string, iid, sid int) *row {
	r := &row{typ: typ, px: pxname, sv: svname}
	for i := range r.v {
		r.v[i] = noValue
	}
	r.set(colPid, 1)
	r.set(colIid, int64(iid))
	r.set(colSid, int64(sid))
	r.set(colType, int64(typ))
	return r
}

func (r *row) set(col int, v int64) { r.v[col] = v }

func (r *row) setU(col int, v uint64) { r.set(col, int64(v)) }

// zero sets columns whose counters edgeproxy structurally never moves (no
// deny rules, no compression, no cache, no queue, no TLS, no HTTP/2): their
// value is a true 0, not an unknown.
func (r *row) zero(cols ...int) {
	for _, c := range cols {
		r.set(c, 0)
	}
}

// num returns the numeric value of a column and whether it has one.
func (r *row) num(col int) (int64, bool) {
	v := r.v[col]
	return v, v != noValue
}

// cell is a column as the CSV prints it.
func (r *row) cell(col int) string {
	switch col {
	case colPxname:
		return r.px
	case colSvname:
		return r.sv
	case colStatus:
		return r.status
	case colCheckStatus:
		return r.checkStatus
	case colCheckDesc:
		return r.checkDesc
	case colLastChk:
		return r.lastChk
	case colMode:
		return "http" // every edgeproxy proxy is an HTTP one
	case colDash:
		return "-"
	}
	if v, ok := r.num(col); ok {
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// Col returns a column by name as the CSV shows it; the HTML template uses
// it. An unknown name is an error, so a typo fails the template.
func (r *row) Col(name string) (string, error) {
	i, ok := columnIndex[name]
	if !ok {
		return "", errUnknownColumn(name)
	}
	return r.cell(i), nil
}

type errUnknownColumn string

func (e errUnknownColumn) Error() string { return "unknown stats column " + strconv.Quote(string(e)) }

// sum adds up a column over rows, skipping empty cells.
func sum(rows []*row, col int) int64 {
	var t int64
	for _, r := range rows {
		if v, ok := r.num(col); ok {
			t += v
		}
	}
	return t
}

// group is one proxy of the report: a frontend (one FRONTEND row), a
// backend (its server rows, then the BACKEND row), or a "listen" section
// such as the stats listener itself (a FRONTEND and a BACKEND row).
type group struct {
	Name     string
	Frontend *row   // nil for a backend
	Servers  []*row // in the backend's order
	Backend  *row   // nil for a frontend
	IsListen bool
}

// rows returns the group's rows in HAProxy's order: FRONTEND, servers,
// BACKEND.
func (g *group) rows() []*row {
	out := make([]*row, 0, len(g.Servers)+2)
	if g.Frontend != nil {
		out = append(out, g.Frontend)
	}
	out = append(out, g.Servers...)
	if g.Backend != nil {
		out = append(out, g.Backend)
	}
	return out
}
