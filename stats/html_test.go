package stats

import (
	"regexp"
	"strings"
	"testing"

	"github.com/edgeproxy/edgeproxy/proxy"
)

func TestHTMLPage(t *testing.T) {
	sc := newScenario(t)
	sc.app.Servers()[1].SetDown(true)
	resp, body := fetch(t, nil, sc.url+"/haproxy?stats")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		"<title>edgeproxy statistics – pool pool-1</title>",
		`<meta http-equiv="refresh" content="5">`,
		"Backend app", "Backend dead", "Backend empty", "Backend other",
		">fe<", ">fe2<", ">s0<", ">s1<", ">gone<", ">o0<",
		`<td class="st up">UP</td>`, `<td class="st down">DOWN</td>`, `<td class="st up">OPEN</td>`,
		"no server", // the empty backend
		`href="/haproxy?stats;csv"`, `href="/haproxy?stats;norefresh"`, `href="/haproxy?stats;up"`,
		"100 KiB", // the upload, in bytes in
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// s1's row carries its DOWN state.
	if !regexp.MustCompile(`>s1</td><td class="st down">DOWN</td>`).MatchString(body) {
		t.Error("s1 is not shown DOWN")
	}
	// Every data row has as many cells as its table has columns: 19 in
	// the frontends table, 28 in a backend's.
	for _, tr := range strings.Split(body, "<tr")[1:] {
		if !strings.Contains(tr, `<td class="name">`) {
			continue
		}
		want := 19
		if strings.Contains(tr, `class="chk"`) {
			want = 28
		}
		if n := strings.Count(tr, "<td"); n != want {
			t.Errorf("row has %d cells, want %d: %.80s", n, want, tr)
		}
	}
	// Self-contained: no script, no outside resource.
	for _, bad := range []string{"<script", "<link", "src=", "http://", "https://", "@import"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}

	_, body = fetch(t, nil, sc.url+"/haproxy?stats;norefresh")
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error(";norefresh still refreshes")
	}
	if !strings.Contains(body, `href="/haproxy?stats"`) {
		t.Error("no link to turn refreshing back on")
	}

	_, body = fetch(t, nil, sc.url+"/haproxy?stats;up")
	if strings.Contains(body, ">s1<") || !strings.Contains(body, ">s0<") {
		t.Error(";up does not hide exactly the servers that are not UP")
	}
}

// Names come from the configuration and discovery: the page escapes them.
func TestHTMLEscapesNames(t *testing.T) {
	b := newBackend("be<i>", spec("<b>x</b>", "127.0.0.1:1"))
	_, url := startStats(t, Options{
		Backends: func() []*proxy.Backend { return []*proxy.Backend{b} },
		PoolName: `"pool"&<x>`,
	})
	_, body := fetch(t, nil, url+"/haproxy?stats")
	if strings.Contains(body, "<b>x</b>") || strings.Contains(body, "be<i>") || strings.Contains(body, "<x>") {
		t.Error("a name reached the page unescaped")
	}
	for _, want := range []string{"&lt;b&gt;x&lt;/b&gt;", "be&lt;i&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"0", "0 B"},
		{"1023", "1023 B"},
		{"1024", "1 KiB"},
		{"1536", "1.5 KiB"},
		{"102400", "100 KiB"},
		{"1073741824", "1 GiB"},
		{"x", "x"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
