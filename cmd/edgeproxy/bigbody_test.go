package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

const gib = 1 << 30

// zeroReader yields n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// peakRSS reads the high-water mark of a process's resident set (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestGigabyteBodiesStayUnder64MiB moves 1 GiB up and 1 GiB down through
// the proxy, chunked and with Content-Length, and checks the process never
// held more than 64 MiB resident.
func TestGigabyteBodiesStayUnder64MiB(t *testing.T) {
	bs := startCustomers(t, 1, func(string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/upload":
				n, err := io.Copy(io.Discard, r.Body)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				fmt.Fprint(w, n)
			case "/download":
				w.Header().Set("Content-Length", strconv.Itoa(gib))
				io.Copy(w, &zeroReader{n: gib})
			case "/chunked":
				io.Copy(w, &zeroReader{n: gib}) // no length: chunked
			}
		}
	})
	p, addr, _ := runSeed(t, addrsOf(bs))
	base := "http://" + addr

	for _, path := range []string{"/download", "/chunked"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != gib {
			t.Fatalf("%s: %d bytes, %v", path, n, err)
		}
	}
	for _, length := range []int64{gib, -1} {
		req, _ := http.NewRequest("POST", base+"/upload", io.NopCloser(&zeroReader{n: gib}))
		req.ContentLength = length
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != strconv.Itoa(gib) {
			t.Fatalf("upload (length %d): backend got %q", length, body)
		}
	}
	if rss := peakRSS(t, p.cmd.Process.Pid); rss > 64<<20 {
		t.Fatalf("peak RSS %d MiB, want under 64 MiB", rss>>20)
	} else {
		t.Logf("peak RSS %.1f MiB over 4 GiB moved", float64(rss)/(1<<20))
	}
}
