package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseOptionsEnvironment(t *testing.T) {
	for _, args := range [][]string{
		{"-edgeproxy-env", "EDGEPROXY_BATCH_WRITES"},
		{"-baseline-env", "GOGC=100 off"},
	} {
		_, err := parseOptions(args)
		if err == nil || !strings.Contains(err.Error(), "is not K=V") {
			t.Errorf("parseOptions(%q) = %v, want a K=V error", args, err)
		}
	}
	_, err := parseOptions([]string{"-baseline", "/nonexistent/edgeproxy"})
	if err == nil || !strings.Contains(err.Error(), "-baseline") {
		t.Errorf("missing baseline binary: %v", err)
	}
}

// TestHold holds idle connections to a loopback server and prints the RSS
// of a process (this one) before, while held, when closed and after.
func TestHold(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	var out, errs strings.Builder
	code := holdCmd([]string{"-addr", srv.Listener.Addr().String(), "-pid", strconv.Itoa(os.Getpid()),
		"-conns", "20", "-sources", "1", "-for", "250ms", "-after", "250ms", "-every", "100ms"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	for _, want := range []string{"before", "20 connections open and idle (0 failed", "held", "closed", "after"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code := holdCmd([]string{"-addr", srv.Listener.Addr().String()}, &out, &errs); code != 2 {
		t.Errorf("without -pid: exit %d, want 2", code)
	}
}
