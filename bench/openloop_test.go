package main

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestParseResponse(t *testing.T) {
	full := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello"
	for _, tc := range []struct {
		in       string
		complete bool
		status   int
		close    bool
	}{
		{full, true, 200, false},
		{full[:len(full)-1], false, 0, false},
		{full[:20], false, 0, false},
		{"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", true, 204, true},
		{"HTTP/1.0 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", true, 503, true},
	} {
		p, err := parseResponse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if p.complete != tc.complete || (tc.complete && (p.status != tc.status || p.close != tc.close || p.size != len(tc.in))) {
			t.Errorf("%q: got %+v", tc.in, p)
		}
	}
	if _, err := parseResponse([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")); err == nil {
		t.Error("chunked accepted")
	}
}

// TestOpenLoopKeepsTheSchedule runs the generator briefly against an
// in-process server: every scheduled request completes, on time.
func TestOpenLoopKeepsTheSchedule(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprint(w, "Customer Application")
	})}
	go srv.Serve(l)
	defer srv.Close()
	for _, path := range []string{"/", "/close"} {
		r, err := openLoop(l.Addr().String(), path, 1000, 4, 300*time.Millisecond, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 300 || r.OK != 300 || r.Dropped != 0 || r.SockErr != 0 {
			t.Fatalf("%s: %+v", path, r)
		}
		if r.Elapsed > 5*time.Second {
			t.Errorf("%s: took %v for a 300 ms schedule", path, r.Elapsed)
		}
		if p50 := r.Hist.quantile(0.5); p50 > 500*time.Millisecond {
			t.Errorf("%s: p50 %v", path, p50)
		}
	}
}
