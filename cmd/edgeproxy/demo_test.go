package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `edgeproxy demo` as a newcomer would and follows its
// printed instructions: both pool instances serve the Customer Application
// over the four tasks, the health check answers, and scaling the app through
// the fake Marathon reaches the pool.
func TestDemo(t *testing.T) {
	// Two loopback addresses of our own, so ports 80 and 9090 are free.
	a, b := rand.IntN(200)+20, rand.IntN(200)+20
	ip1, ip2 := fmt.Sprintf("127.%d.%d.1", a, b), fmt.Sprintf("127.%d.%d.2", a, b)
	cmd := exec.Command(binPath, "demo", "--addresses", ip1+","+ip2, "--marathon-address", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exit after SIGTERM: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("demo did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("demo stderr:\n%s", stderr.String())
		}
	}()
	var banner strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		banner.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	marathon := regexp.MustCompile(`Marathon \(fake\):\s+(\S+)`).FindStringSubmatch(banner.String())
	if marathon == nil || !strings.Contains(banner.String(), "http://"+ip1+":80/") {
		t.Fatalf("banner:\n%s", banner.String())
	}
	tasks := func(ip string, n int) map[string]bool {
		seen := map[string]bool{}
		for range n {
			resp, err := http.Get("http://" + ip + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`task (\S+)\.`).FindSubmatch(body)
			if resp.StatusCode != 200 || m == nil || !strings.Contains(string(body), "Customer Application") {
				t.Fatalf("%s: %d %q", ip, resp.StatusCode, body)
			}
			seen[string(m[1])] = true
		}
		return seen
	}
	if got := tasks(ip1, 8); len(got) != 4 {
		t.Fatalf("instance 1 reached %d tasks, want 4", len(got))
	}
	if got := tasks(ip2, 8); len(got) != 4 {
		t.Fatalf("instance 2 reached %d tasks, want 4", len(got))
	}
	resp, err := http.Get("http://" + ip1 + ":9090/_haproxy_health_check")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health check: %v %v", resp, err)
	}
	req, _ := http.NewRequest("PUT", marathon[1]+"/v2/apps/customer", strings.NewReader(`{"instances": 8}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("scale: %v %v", resp, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(tasks(ip2, 16)) != 8 {
		if time.Now().After(deadline) {
			t.Fatal("pool did not follow the scale-up to 8 tasks")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
