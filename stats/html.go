package stats

import (
	_ "embed"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"
)

// pageRefresh is how often the stats page reloads itself unless the request
// says ";norefresh".
const pageRefresh = 5 * time.Second

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"bytes":      humanBytes,
	"seconds":    humanSeconds,
	"stateClass": stateClass,
}).Parse(pageSource))

// pageData is what the page template shows.
type pageData struct {
	Pool      string
	Version   string
	PID       int
	Uptime    string
	Now       string
	Ready     bool
	Refresh   int // seconds; 0 when off
	CSVLink   string
	ToggleRef string // link that switches refresh on or off
	ToggleUp  string // link that switches the ";up" filter
	OnlyUp    bool   // the ";up" filter is on
	Listen    []*group
	Frontends []*group
	Backends  []*group
}

func (s *Server) writePage(w io.Writer, path string, gs []*group, v view, now time.Time) error {
	d := pageData{
		Pool:    s.opts.PoolName,
		Version: s.version,
		PID:     s.pid,
		Uptime:  now.Sub(s.started).Truncate(time.Second).String(),
		Now:     now.UTC().Format(time.RFC3339),
		Ready:   s.ready(),
		OnlyUp:  v.up,
	}
	if !v.norefresh {
		d.Refresh = int(pageRefresh / time.Second)
	}
	link := func(v view) string { return path + "?" + v.query() }
	csv := v
	csv.csv = true
	d.CSVLink = link(csv)
	t := v
	t.norefresh = !v.norefresh
	d.ToggleRef = link(t)
	t = v
	t.up = !v.up
	d.ToggleUp = link(t)
	for _, g := range gs {
		switch {
		case g.IsListen:
			d.Listen = append(d.Listen, g)
		case g.Frontend != nil:
			d.Frontends = append(d.Frontends, g)
		default:
			if v.up || v.noMaint {
				g = filtered(g, v)
			}
			d.Backends = append(d.Backends, g)
		}
	}
	return pageTemplate.Execute(w, d)
}

// filtered is g with only the servers the view shows.
func filtered(g *group, v view) *group {
	c := *g
	c.Servers = nil
	for _, r := range g.Servers {
		if v.shows(r) {
			c.Servers = append(c.Servers, r)
		}
	}
	return &c
}

// stateClass is the CSS class that colours a status.
func stateClass(status string) string {
	switch status {
	case "UP", "OPEN", "no check":
		return "up"
	case "DOWN":
		return "down"
	case "DRAIN", "NOLB":
		return "drain"
	case "MAINT":
		return "maint"
	}
	return "unknown"
}

// humanSeconds shows a number of seconds as a duration: 1h2m3s.
func humanSeconds(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return s
	}
	return (time.Duration(n) * time.Second).String()
}

// humanBytes shows a byte count the way an operator reads it: 1.5 MiB.
func humanBytes(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	const unit = 1024
	if n < unit {
		return s + " B"
	}
	v := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	out := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(out, ".0") + " " + suffixes[i]
}
