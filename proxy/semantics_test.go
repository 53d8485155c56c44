package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestChunkedResponseFlushesAsItArrives(t *testing.T) {
	release := make(chan struct{})
	b := startBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: second\n\n")
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send(get("a", "/events"))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first event %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event not flushed before the backend finished")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest %q", rest)
	}
}

func TestBodilessResponses(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.response("HEAD")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "11" {
		t.Fatalf("HEAD: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, p := range []string{"/204", "/304"} {
		c.send(get("a", p))
		resp, body := c.response("GET")
		if body != "" || resp.Header.Get("Content-Length") != "" && resp.Header.Get("Content-Length") != "0" {
			t.Fatalf("%s: %d %q %v", p, resp.StatusCode, body, resp.Header)
		}
	}
	// The connection is still in sync: a normal request works.
	c.send(get("a", "/"))
	if _, body := c.response("GET"); body != "hello world" {
		t.Fatalf("after bodiless responses: %q", body)
	}
}

func TestExpectContinue(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d: %s", len(data), data)
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q %v", line, err)
	}
	if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("interim response not empty: %q", blank)
	}
	c.send("hello")
	resp, body := c.response("POST")
	if resp.StatusCode != 200 || body != "got 5: hello" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if b.lastHeader().Get("Expect") != "" {
		t.Fatalf("Expect forwarded after edgeproxy answered it")
	}
}

func TestWeightsAndAlgorithms(t *testing.T) {
	mk := func(bal Balance, weights ...int) *Backend {
		be := NewBackend("b", BackendOptions{Balance: bal})
		var specs []ServerSpec
		for i, w := range weights {
			specs = append(specs, ServerSpec{Name: fmt.Sprint(i), Addr: fmt.Sprintf("127.0.0.1:%d", 20000+i), Weight: w})
		}
		be.SetServers(specs)
		return be
	}
	count := func(be *Backend, n int, hash func(i int) uint64) map[string]int {
		m := map[string]int{}
		for i := range n {
			m[be.pick(hash(i), nil).Name]++
		}
		return m
	}
	zero := func(int) uint64 { return 0 }
	for _, bal := range []Balance{RoundRobin, StaticRR} {
		got := count(mk(bal, 3, 1, 0), 400, zero)
		if got["0"] != 300 || got["1"] != 100 || got["2"] != 0 {
			t.Errorf("%s weights 3,1,0: %v", bal, got)
		}
	}
	if got := count(mk(Random, 1, 1), 2000, zero); got["0"] < 800 || got["1"] < 800 {
		t.Errorf("random uneven: %v", got)
	}
	src := mk(Source, 1, 1, 1, 1)
	first := src.pick(42, nil)
	for range 10 {
		if src.pick(42, nil) != first {
			t.Fatal("source is not sticky")
		}
	}
	if got := count(src, 400, func(i int) uint64 { return uint64(i) * 2654435761 }); len(got) != 4 {
		t.Errorf("source does not spread clients: %v", got)
	}
	lc := mk(LeastConn, 1, 1, 1)
	lc.Servers()[0].Stats.Active.Store(5)
	lc.Servers()[1].Stats.Active.Store(1)
	lc.Servers()[2].Stats.Active.Store(3)
	if s := lc.pick(0, nil); s.Name != "1" {
		t.Errorf("leastconn picked %s", s.Name)
	}
	lc.Servers()[1].SetDown(true)
	if s := lc.pick(0, nil); s.Name != "2" {
		t.Errorf("leastconn picked down server or wrong one: %s", s.Name)
	}
	rr4 := mk(RoundRobin, 1, 1, 1, 1)
	rr4.Servers()[3].SetDown(true)
	var order []string
	for range 9 {
		order = append(order, rr4.pick(0, nil).Name)
	}
	if got := fmt.Sprint(order); got != "[0 1 2 0 1 2 0 1 2]" {
		t.Errorf("round robin with a server down: %s, want the others in turn", got)
	}
	rr := mk(RoundRobin, 1, 1)
	rr.Servers()[0].SetDown(true)
	if got := count(rr, 10, zero); got["1"] != 10 {
		t.Errorf("down server picked: %v", got)
	}
	rr.Servers()[1].SetDown(true)
	if rr.pick(0, nil) != nil {
		t.Error("picked with every server down")
	}
}

// TestServerSetSwapUnderLoad replaces the server set again and again while
// clients send requests: no request fails, removed servers' idle
// connections are closed, and traffic moves to the new servers.
func TestServerSetSwapUnderLoad(t *testing.T) {
	var bs []*testBackend
	for i := range 6 {
		bs = append(bs, startBackend(t, fmt.Sprintf("b%d", i), func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond)
			io.WriteString(w, "ok")
		}))
	}
	be := backendOf(t, BackendOptions{}, bs[0].addr(), bs[1].addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	var failures, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + addr + "/")
				total.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "ok" {
					failures.Add(1)
				}
			}
		}()
	}
	sets := [][]int{{0, 1, 2, 3}, {2, 3}, {3, 4, 5}, {0, 5}, {1, 2, 3, 4}}
	for round := range 20 {
		idx := sets[round%len(sets)]
		var specs []ServerSpec
		for _, i := range idx {
			specs = append(specs, ServerSpec{Name: bs[i].name, Addr: bs[i].addr(), Weight: 1})
		}
		be.SetServers(specs)
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during server set changes", failures.Load(), total.Load())
	}
	if total.Load() < 100 {
		t.Fatalf("only %d requests ran", total.Load())
	}
	final := map[string]bool{}
	for _, s := range be.Servers() {
		final[s.Addr] = true
	}
	if !final[bs[1].addr()] || final[bs[0].addr()] {
		t.Fatalf("final set wrong: %v", final)
	}
}

func TestIdleBackendConnectionsExpire(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{Timeouts: Timeouts{BackendIdle: 200 * time.Millisecond}}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	c.response("GET")
	if n := be.Servers()[0].IdleConns(); n != 1 {
		t.Fatalf("%d idle connections after a request, want 1", n)
	}
	deadline := time.Now().Add(3 * time.Second)
	for be.Servers()[0].IdleConns() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle backend connection not closed after timeout backend-idle")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.send(get("a", "/"))
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("after expiry: %d", resp.StatusCode)
	}
}
