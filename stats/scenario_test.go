package stats

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// scenario is a small pool on loopback with known traffic sent through it:
//
//	frontend fe:  default app; /dead -> dead; /empty -> empty
//	frontend fe2: only.example -> other; no default backend
//	backend app:   s0, s1 (real HTTP servers)
//	backend dead:  gone (nothing listens there)
//	backend empty: no server
//	backend other: o0
type scenario struct {
	app, dead, empty, other *proxy.Backend
	fe, fe2                 *proxy.Frontend
	stats                   *Server
	url                     string
	feURL                   string // the frontend fe
}

// The traffic the scenario sends, and what the report must show for it.
const (
	scUploadSize = 100 << 10 // streamed, so counted in bytes in
	// fe: 4 x 200, 2 x 404, 1 x 503 from the server, 1 upload (200),
	// 1 to dead (502 from edgeproxy), 1 to empty (503, no server),
	// 1 refused for its framing (400): 11 connections.
	scFeConns = 11
	// app served 8 requests of fe, each with a 4-byte body.
	scAppRequests = 8
)

func newScenario(t *testing.T, extra ...Options) *scenario {
	t.Helper()
	sc := &scenario{
		app:   newBackend("app", spec("s0", statusBackend(t)), spec("s1", statusBackend(t))),
		dead:  newBackend("dead", spec("gone", closedAddr(t))),
		empty: newBackend("empty"),
		other: newBackend("other", spec("o0", statusBackend(t))),
	}
	var feAddr, fe2Addr string
	sc.fe, feAddr = startFrontend(t, proxy.FrontendConfig{
		Name:    "fe",
		Default: sc.app,
		Routes: []proxy.Route{
			{Backend: sc.dead, PathBeg: "/dead"},
			{Backend: sc.empty, PathBeg: "/empty"},
		},
	})
	sc.fe2, fe2Addr = startFrontend(t, proxy.FrontendConfig{
		Name:   "fe2",
		Routes: []proxy.Route{{Backend: sc.other, HostEq: "only.example"}},
	})
	links := map[*proxy.Frontend][]*proxy.Backend{
		sc.fe:  {sc.app, sc.dead, sc.empty},
		sc.fe2: {sc.other},
	}
	opts := Options{
		Frontends:        func() []*proxy.Frontend { return []*proxy.Frontend{sc.fe, sc.fe2} },
		Backends:         func() []*proxy.Backend { return []*proxy.Backend{sc.app, sc.dead, sc.empty, sc.other} },
		FrontendBackends: func(f *proxy.Frontend) []*proxy.Backend { return links[f] },
		PoolName:         "pool-1",
	}
	if len(extra) > 0 {
		opts.Extra = extra[0].Extra
		opts.Ready = extra[0].Ready
		opts.Config = extra[0].Config
		opts.Logf = extra[0].Logf
	}
	sc.stats, sc.url = startStats(t, opts)

	c := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	expect := func(method, url, host string, body []byte, want int) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
		}
	}
	fe := "http://" + feAddr
	sc.feURL = fe
	for range 4 {
		expect("GET", fe+"/", "", nil, 200)
	}
	expect("GET", fe+"/status/404", "", nil, 404)
	expect("GET", fe+"/status/404", "", nil, 404)
	expect("GET", fe+"/status/503", "", nil, 503)
	expect("POST", fe+"/upload", "", bytes.Repeat([]byte("u"), scUploadSize), 200)
	expect("GET", fe+"/dead", "", nil, 502)
	expect("GET", fe+"/empty", "", nil, 503)
	refuse(t, feAddr)
	expect("GET", "http://"+fe2Addr+"/", "", nil, 503) // no route
	expect("GET", "http://"+fe2Addr+"/", "only.example", nil, 200)
	return sc
}

// refuse sends a request with both Content-Length and Transfer-Encoding,
// which the frontend refuses with 400.
func refuse(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the refusal: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("ambiguous framing got %d, want 400", resp.StatusCode)
	}
}

// csv fetches and parses the CSV export.
func (sc *scenario) csv(t *testing.T) csvReport {
	t.Helper()
	resp, body := fetch(t, nil, sc.url+"/haproxy?stats;csv")
	if resp.StatusCode != 200 {
		t.Fatalf("CSV: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("CSV content type %q", ct)
	}
	return parseCSV(t, body)
}

// settle waits until the frontends have seen every client connection of
// the traffic close: the server notices a close only after the client.
func (sc *scenario) settle(t *testing.T) {
	t.Helper()
	waitFor(t, "the frontends' connections to close", func() bool {
		rep := sc.csv(t)
		return rep.row(t, "fe/FRONTEND")["scur"] == "0" && rep.row(t, "fe2/FRONTEND")["scur"] == "0"
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
