package e2e

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/png"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStatsPageInChromium loads the stats page of a running edgeproxy in
// headless Chromium, as an operator's browser would render it: two UP
// servers that took traffic and one DOWN server. It checks the page's DOM
// against the CSV export of the same moment, and saves a screenshot in
// $EDGEPROXY_TEST_ARTIFACTS (or the test's temporary directory).
func TestStatsPageInChromium(t *testing.T) {
	chromium := requireProgram(t, "chromium")
	up1 := startBackend(t, "up-1", false)
	up2 := startBackend(t, "up-2", false)
	dead := startBackend(t, "dead", false)
	dead.stop()
	port, statsPort := freePort(t), freePort(t)
	pool, feName := poolConfig(t, port, statsPort, "", []service{
		{b: up1}, {b: up2}, {b: dead, miscStr: "inter 200ms"},
	})
	startEdgeproxy(t, pool, statsPort)
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/haproxy?stats", statsPort)
	eventually(t, 10*time.Second, "edgeproxy marks the dead server DOWN", func() bool {
		return parseStatsCSV(t, fetchOK(t, statsURL+";csv")).row(t, "customer-backend", dead.serverName())["status"] == "DOWN"
	})

	c := &http.Client{Timeout: 10 * time.Second}
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	for path, n := range map[string]int{"/": 10, "/missing": 2, "/error": 1} {
		for range n {
			get(t, c, front+path)
		}
	}

	dir := t.TempDir()
	dom := chromiumRun(t, chromium, dir, "--dump-dom", statsURL)
	csv := parseStatsCSV(t, fetchOK(t, statsURL+";csv"))
	page := parsePage(t, string(dom))

	// The frontend table: the stats listener's row and the pool's frontend.
	fe := page.row(t, "Frontends", feName)
	wantCell(t, fe, "Status", "OPEN")
	wantCell(t, fe, "Requests", "13")
	wantCell(t, fe, "Responses 2xx", "10")
	wantCell(t, fe, "Responses 4xx", "2")
	wantCell(t, fe, "Responses 5xx", "1")
	if !strings.Contains(fe["Status@class"], "up") {
		t.Errorf("frontend status cell has class %q, want it coloured as up", fe["Status@class"])
	}

	// The backend table: each server, then the backend total, as the CSV
	// counts them, with its state coloured.
	section := "Backend customer-backend"
	if !strings.Contains(page.headings[section], "3 servers") {
		t.Errorf("backend heading %q, want it to count 3 servers", page.headings[section])
	}
	var total int
	for _, b := range []*backend{up1, up2, dead} {
		want := csv.row(t, "customer-backend", b.serverName())
		got := page.row(t, section, b.serverName())
		for cell, col := range map[string]string{
			"Status": "status", "Weight": "weight", "Sessions total": "stot",
			"Responses 2xx": "hrsp_2xx", "Responses 4xx": "hrsp_4xx", "Responses 5xx": "hrsp_5xx",
			"Errors conn": "econ", "Health downs": "chkdown",
		} {
			wantCell(t, got, cell, want[col])
		}
		n, _ := strconv.Atoi(got["Sessions total"])
		total += n
		state := "up"
		if b == dead {
			state = "down"
		}
		if want["status"] != strings.ToUpper(state) {
			t.Errorf("CSV status of %s is %q, want %s", b.serverName(), want["status"], strings.ToUpper(state))
		}
		if !strings.Contains(got["Status@class"], state) {
			t.Errorf("%s status cell has class %q, want %q", b.serverName(), got["Status@class"], state)
		}
		if b == dead && !strings.Contains(got["Health last check"], "L4CON") {
			t.Errorf("the dead server's last check shows %q, want L4CON", got["Health last check"])
		}
	}
	if total != 13 {
		t.Errorf("the servers' sessions add up to %d, want the 13 requests", total)
	}
	be := page.row(t, section, "Backend")
	wantCell(t, be, "Status", "UP")
	wantCell(t, be, "Sessions total", "13")
	wantCell(t, be, "Responses 4xx", "2")

	// The screenshot: a real rendering of that page.
	shot := filepath.Join(artifactDir(t), "stats-page.png")
	chromiumRun(t, chromium, dir, "--screenshot="+shot, statsURL)
	checkScreenshot(t, shot, 1400, 900)
	t.Logf("stats page screenshot: %s", shot)
	domFile := filepath.Join(filepath.Dir(shot), "stats-page.html")
	if err := os.WriteFile(domFile, dom, 0o644); err != nil {
		t.Errorf("saving the DOM: %v", err)
	}
}

// chromiumRun runs headless Chromium once on url with one more flag
// (--dump-dom or --screenshot=FILE) and returns its standard output. Its
// profile and home live in dir.
func chromiumRun(t *testing.T, chromium, dir, flag, url string) []byte {
	t.Helper()
	profile, err := os.MkdirTemp(dir, "profile")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	out, errOut, err := runBounded(t, 60*time.Second, env, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--window-size=1400,900", flag, url)
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", flag, err, errOut)
	}
	return out
}

// artifactDir is $EDGEPROXY_TEST_ARTIFACTS, created if needed, or the
// test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("EDGEPROXY_TEST_ARTIFACTS")
	if d == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatalf("EDGEPROXY_TEST_ARTIFACTS: %v", err)
	}
	return d
}

// checkScreenshot asserts that file is a PNG of the window's size with a
// real page in it: many colours, among them the page's UP green and DOWN
// red.
func checkScreenshot(t *testing.T, file string, w, h int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", file, err)
	}
	if got := img.Bounds().Size(); got != (image.Point{w, h}) {
		t.Errorf("screenshot is %v, want %dx%d", got, w, h)
	}
	colours := map[[3]uint8]int{}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}]++
		}
	}
	if len(colours) < 32 {
		t.Errorf("screenshot has %d distinct colours: not a rendered page", len(colours))
	}
	for name, c := range map[string][3]uint8{"UP green #c8efc8": {0xc8, 0xef, 0xc8}, "DOWN red #f6b9b9": {0xf6, 0xb9, 0xb9}} {
		if colours[c] < 50 {
			t.Errorf("screenshot has %d pixels of the %s", colours[c], name)
		}
	}
	t.Logf("screenshot: %dx%d, %d bytes, %d distinct colours", bd.Dx(), bd.Dy(), len(b), len(colours))
}

// statsPage is the stats page's tables as the browser's DOM has them:
// per section (the heading before the table, "Frontends" or "Backend
// NAME"), the rows by their first cell, each a map from the flattened
// column header ("Responses 2xx") to the cell's text; "<header>@class" holds
// the cell's class.
type statsPage struct {
	headings map[string]string // section -> the heading's whole text
	sections map[string]map[string]map[string]string
}

var (
	headingRE = regexp.MustCompile(`(?s)<h2>(.*?)</h2>\s*<table>(.*?)</table>`)
	rowRE     = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE    = regexp.MustCompile(`(?s)<(t[dh])([^>]*)>(.*?)</t[dh]>`)
	attrRE    = regexp.MustCompile(`(\w+)="([^"]*)"`)
	tagRE     = regexp.MustCompile(`<[^>]*>`)
)

type cell struct {
	text  string
	attrs map[string]string
}

func parseCells(tr string) []cell {
	var out []cell
	for _, m := range cellRE.FindAllStringSubmatch(tr, -1) {
		c := cell{text: strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(m[3], ""))), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			c.attrs[a[1]] = a[2]
		}
		out = append(out, c)
	}
	return out
}

// parsePage reads the page's sections. Each table's head has two rows: a
// cell spanning both rows names one column, a cell spanning N columns
// names a group whose N columns the second row names.
func parsePage(t *testing.T, dom string) *statsPage {
	t.Helper()
	p := &statsPage{headings: map[string]string{}, sections: map[string]map[string]map[string]string{}}
	for _, m := range headingRE.FindAllStringSubmatch(dom, -1) {
		heading := strings.Join(strings.Fields(html.UnescapeString(tagRE.ReplaceAllString(m[1], ""))), " ")
		section := heading
		if f := strings.Fields(heading); len(f) > 2 && (f[len(f)-1] == "servers" || f[len(f)-1] == "server") {
			// "Backend NAME 3 servers": the name without the count.
			section = strings.Join(f[:len(f)-2], " ")
		}
		p.headings[section] = heading
		trs := rowRE.FindAllStringSubmatch(m[2], -1)
		if len(trs) < 2 {
			t.Fatalf("section %q: table has %d rows", section, len(trs))
		}
		var cols []string
		sub := parseCells(trs[1][1])
		for _, c := range parseCells(trs[0][1]) {
			n, _ := strconv.Atoi(c.attrs["colspan"])
			if n == 0 {
				cols = append(cols, c.text)
				continue
			}
			for range n {
				if len(sub) == 0 {
					t.Fatalf("section %q: header group %q lacks columns", section, c.text)
				}
				cols = append(cols, c.text+" "+sub[0].text)
				sub = sub[1:]
			}
		}
		rows := map[string]map[string]string{}
		for _, tr := range trs[2:] {
			cells := parseCells(tr[1])
			if len(cells) != len(cols) {
				continue // "no server"
			}
			r := map[string]string{}
			for i, c := range cells {
				r[cols[i]] = c.text
				r[cols[i]+"@class"] = c.attrs["class"]
			}
			rows[cells[0].text] = r
		}
		p.sections[section] = rows
	}
	if len(p.sections) == 0 {
		t.Fatalf("the DOM has no stats tables:\n%s", oneLine(dom))
	}
	return p
}

func (p *statsPage) row(t *testing.T, section, name string) map[string]string {
	t.Helper()
	rows, ok := p.sections[section]
	if !ok {
		t.Fatalf("the page has no section %q; it has %v", section, keysOf(p.sections))
	}
	r, ok := rows[name]
	if !ok {
		t.Fatalf("section %q has no row %q; it has %v", section, name, keysOf(rows))
	}
	return r
}

func wantCell(t *testing.T, row map[string]string, col, want string) {
	t.Helper()
	got, ok := row[col]
	if !ok {
		t.Errorf("row %q has no column %q", row["Server"]+row["Frontend"], col)
		return
	}
	if got != want {
		t.Errorf("row %q: %s shows %q, want %q", row["Server"]+row["Frontend"], col, got, want)
	}
}

func keysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
