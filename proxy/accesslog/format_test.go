package accesslog

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// start is the fixed clock of the golden lines.
var start = time.Date(2026, time.March, 1, 10, 4, 5, 123456789, time.UTC)

// goldenEntries cover each kind of line and every escaping rule.
func goldenEntries() []Entry {
	return []Entry{
		{ // a plain proxied request
			Kind: Request, Start: start, Frontend: "http-in", Backend: "customer-backend", Server: "agentip_10.0.1.128_10006",
			ClientIP: netip.MustParseAddr("10.0.1.2"), ClientPort: 33317,
			Method: []byte("GET"), URI: []byte("/index.html?q=1&r=<2>"), Proto: []byte("HTTP/1.1"),
			Status: 200, BytesReceived: 0, BytesSent: 2750,
			Wait: 0, Connect: 30*time.Millisecond + 250*time.Microsecond, Response: 69 * time.Millisecond, Total: 109*time.Millisecond + 999*time.Microsecond,
			Termination: "--", FrontendConns: 7, ServerConns: 2,
		},
		{ // retried on another server, IPv6 client, POST with a body
			Kind: Request, Start: start, Frontend: "http-in", Backend: "api", Server: "s2",
			ClientIP: netip.MustParseAddr("2001:db8::1"), ClientPort: 443,
			Method: []byte("POST"), URI: []byte("/v1/items"), Proto: []byte("HTTP/1.0"),
			Status: 201, BytesReceived: 512, BytesSent: 12,
			Connect: 3012 * time.Millisecond, Response: 4 * time.Millisecond, Total: 3017 * time.Millisecond,
			Termination: "--", Retries: 2, Redispatched: true, FrontendConns: 1, ServerConns: 1,
		},
		{ // no server available: answered by edgeproxy
			Kind: Request, Start: start, Frontend: "http-in", Backend: "api",
			ClientIP: netip.MustParseAddr("10.0.1.2"), ClientPort: 1,
			Method: []byte("GET"), URI: []byte("/"), Proto: []byte("HTTP/1.1"),
			Status: 503, BytesSent: 24, Wait: -1, Connect: -1, Response: -1, Total: 40 * time.Microsecond,
			Termination: "SC", FrontendConns: 1,
		},
		{ // no route: the frontend stands for the backend
			Kind: Request, Start: start, Frontend: "http-in",
			ClientIP: netip.MustParseAddr("10.0.1.2"), ClientPort: 2,
			Method: []byte("GET"), URI: []byte("/"), Proto: []byte("HTTP/1.1"),
			Status: 503, BytesSent: 24, Wait: -1, Connect: -1, Response: -1,
			Termination: "SC", FrontendConns: 1,
		},
		{ // server timeout
			Kind: Request, Start: start, Frontend: "http-in", Backend: "slow", Server: "s0",
			ClientIP: netip.MustParseAddr("10.0.1.2"), ClientPort: 3,
			Method: []byte("GET"), URI: []byte("/slow"), Proto: []byte("HTTP/1.1"),
			Status: 504, BytesSent: 20, Connect: 1 * time.Millisecond, Response: -1, Total: 30001 * time.Millisecond,
			Termination: "sH", FrontendConns: 1, ServerConns: 1,
		},
		{ // an upgraded tunnel
			Kind: Tunnel, Start: start, Frontend: "ws", Backend: "chat", Server: "s0",
			ClientIP: netip.MustParseAddr("192.0.2.7"), ClientPort: 50000,
			Method: []byte("GET"), URI: []byte("/socket"), Proto: []byte("HTTP/1.1"),
			Status: 101, BytesReceived: 1200, BytesSent: 34000,
			Connect: 2 * time.Millisecond, Response: 1 * time.Millisecond, Total: 61 * time.Second,
			Termination: "--", FrontendConns: 3, ServerConns: 1,
		},
		{ // refused by the parser
			Kind: BadRequest, Start: start, Frontend: "http-in",
			ClientIP: netip.MustParseAddr("10.0.1.2"), ClientPort: 4,
			Status: 400, BytesSent: 16, Wait: -1, Connect: -1, Response: -1,
			Termination: "PR", FrontendConns: 1,
		},
		{ // every escaping rule; names with a space and a quote
			Kind: Request, Start: start, Frontend: `odd "fe"`, Backend: "b#1", Server: "s\x01",
			ClientPort: 0,
			Method:     []byte("GET"),
			URI:        []byte("/a\"b\\c\td\x7f\xffé#\u2028\ufffd</script>"), Proto: []byte("HTTP/1.1"),
			Status: 200, Wait: 0, Connect: 0, Response: 0, Total: 0,
			Termination: "", Truncated: true,
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestJSONGolden(t *testing.T) {
	var out []byte
	for _, e := range goldenEntries() {
		out = appendJSON(out, &e, time.UTC)
	}
	golden(t, "json.golden", out)
}

func TestHTTPLogGolden(t *testing.T) {
	var out []byte
	for _, e := range goldenEntries() {
		out = appendHTTPLog(out, &e, time.UTC)
	}
	golden(t, "httplog.golden", out)
}

func TestDatesInLocation(t *testing.T) {
	loc := time.FixedZone("UTC+2", 2*3600)
	e := goldenEntries()[0]
	if got := string(appendJSON(nil, &e, loc)); !strings.HasPrefix(got, `{"time":"2026-03-01T12:04:05.123+02:00",`) {
		t.Errorf("JSON date in UTC+2: %s", got)
	}
	if got := string(appendHTTPLog(nil, &e, loc)); !strings.Contains(got, " [01/Mar/2026:12:04:05.123] ") {
		t.Errorf("httplog date in UTC+2: %s", got)
	}
}

// jsonLine is the schema of a JSON line.
type jsonLine struct {
	Time          string  `json:"time"`
	Level         string  `json:"level"`
	Msg           string  `json:"msg"`
	Frontend      string  `json:"frontend"`
	Backend       string  `json:"backend"`
	Server        string  `json:"server"`
	ClientIP      string  `json:"client_ip"`
	ClientPort    int     `json:"client_port"`
	Method        string  `json:"method"`
	URI           string  `json:"uri"`
	Proto         string  `json:"proto"`
	Status        int     `json:"status"`
	BytesReceived int64   `json:"bytes_received"`
	BytesSent     int64   `json:"bytes_sent"`
	WaitMS        float64 `json:"wait_ms"`
	ConnectMS     float64 `json:"connect_ms"`
	ResponseMS    float64 `json:"response_ms"`
	TotalMS       float64 `json:"total_ms"`
	Termination   string  `json:"termination_state"`
	Retries       int     `json:"retries"`
	Redispatched  bool    `json:"redispatched"`
	FeConns       int64   `json:"fe_conns"`
	SrvConns      int64   `json:"srv_conns"`
	URITruncated  bool    `json:"uri_truncated"`
}

func decodeLine(t testing.TB, line []byte) jsonLine {
	t.Helper()
	var l jsonLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return l
}

// TestJSONDecodes checks the lines with encoding/json: every key known, the
// values as logged, the escaped URI decoding to what was sent.
func TestJSONDecodes(t *testing.T) {
	for i, e := range goldenEntries() {
		l := decodeLine(t, appendJSON(nil, &e, time.UTC))
		wantURI := strings.ToValidUTF8(string(e.URI), "\ufffd")
		if l.URI != wantURI || l.Method != string(e.Method) || l.Status != e.Status ||
			l.Frontend != e.Frontend || l.Server != strings.ToValidUTF8(e.Server, "\ufffd") ||
			l.Retries != e.Retries || l.Redispatched != e.Redispatched || l.URITruncated != e.Truncated ||
			l.Msg != e.Kind.String() || l.Level != "INFO" || l.BytesSent != e.BytesSent {
			t.Errorf("entry %d decodes as %+v", i, l)
		}
		if want := float64(e.Total.Microseconds()) / 1000; l.TotalMS != want {
			t.Errorf("entry %d: total_ms %v, want %v", i, l.TotalMS, want)
		}
		if e.Connect < 0 && l.ConnectMS != -1 {
			t.Errorf("entry %d: connect_ms %v, want -1", i, l.ConnectMS)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
		ok   bool
	}{{"json", JSON, true}, {"httplog", HTTPLog, true}, {"JSON", 0, false}, {"", 0, false}, {"clf", 0, false}} {
		got, err := ParseFormat(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseFormat(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestFormattersDoNotAllocate(t *testing.T) {
	entries := goldenEntries()
	long := entries[0]
	long.URI = []byte("/" + strings.Repeat("é/a\"", 300))
	long.Frontend = strings.Repeat("fe\u2028", 30)
	entries = append(entries, long)
	buf := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(100, func() {
		for i := range entries {
			buf = appendJSON(buf[:0], &entries[i], time.UTC)
			buf = appendHTTPLog(buf[:0], &entries[i], time.UTC)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per formatting run, want 0", n)
	}
}

// FuzzJSON: whatever the URI and names, a line is one valid JSON object on
// one line, and the URI decodes to what was logged (invalid UTF-8 bytes
// replaced one by one).
func FuzzJSON(f *testing.F) {
	f.Add([]byte("/index.html"), "fe")
	f.Add([]byte("/\x00\"\\\n\xff\xe2\x80\xa8"), "a\"b")
	f.Fuzz(func(t *testing.T, uri []byte, name string) {
		e := goldenEntries()[0]
		e.URI, e.Frontend = uri, name
		line := appendJSON(nil, &e, time.UTC)
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not one line: %q", line)
		}
		l := decodeLine(t, line)
		var want strings.Builder
		for _, r := range string(uri) {
			want.WriteRune(r)
		}
		if l.URI != want.String() {
			t.Fatalf("uri %q decodes as %q, want %q", uri, l.URI, want.String())
		}
	})
}

// FuzzHTTPLog: whatever the URI and names, a line is one line whose fields
// before the quoted request are the twelve of httplog, and the request
// holds no quote.
func FuzzHTTPLog(f *testing.F) {
	f.Add([]byte("/index.html"), "fe")
	f.Add([]byte("/a b\"c#\r\n"), "x y")
	f.Fuzz(func(t *testing.T, uri []byte, name string) {
		e := goldenEntries()[0]
		e.URI, e.Frontend, e.Server = uri, name, name
		line := string(appendHTTPLog(nil, &e, time.UTC))
		if strings.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("not one line: %q", line)
		}
		q := strings.IndexByte(line, '"')
		if q < 0 || !strings.HasSuffix(line, "\"\n") || strings.Count(line[q:], `"`) != 2 {
			t.Fatalf("request not quoted once: %q", line)
		}
		if n := len(strings.Fields(line[:q])); n != 12 {
			t.Fatalf("%d fields before the request, want 12: %q", n, line)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := goldenEntries()[0]
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendJSON(buf[:0], &e, time.UTC)
	}
}

func BenchmarkAppendHTTPLog(b *testing.B) {
	e := goldenEntries()[0]
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendHTTPLog(buf[:0], &e, time.UTC)
	}
}

// TestDocsExamples keeps the example lines of docs/logging.md true: each is
// the first golden line of its format.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/logging.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"json.golden", "httplog.golden"} {
		g, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := bytes.Cut(g, []byte("\n"))
		if !bytes.Contains(doc, append(append([]byte("\n"), first...), '\n')) {
			t.Errorf("docs/logging.md does not show the first line of %s:\n%s", name, first)
		}
	}
}
