package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBatchWrites runs the seed pool with --batch-writes on and
// GOMAXPROCS=1, its production shape: concurrent keep-alive clients each
// get every response whole. A value other than auto, on or off is
// refused, naming the flag.
func TestBatchWrites(t *testing.T) {
	backends := startCustomers(t, 2, nil)
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.addr)
	}
	cfg, port, _ := seedWithAddresses(t, addrs)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "GOMAXPROCS=1")
	startProxyEnv(t, addr, env, "run", "--config", cfg, "--bind-address", "127.0.0.1", "--batch-writes", "on", "--access-log", "off")

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			for i := range 100 {
				if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: customer\r\n\r\n"); err != nil {
					errs <- err
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %v", c, i, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "Customer Application") {
					errs <- fmt.Errorf("client %d request %d: %d %q", c, i, resp.StatusCode, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	out, err := exec.Command(binPath, "run", "--config", cfg, "--bind-address", "127.0.0.1", "--batch-writes", "sometimes").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `--batch-writes: "sometimes" is not auto, on or off`) {
		t.Fatalf("bad --batch-writes: err %v, output:\n%s", err, out)
	}
}
