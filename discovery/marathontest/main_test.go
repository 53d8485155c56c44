package marathontest_test

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when the fake's goroutines or HTTP connections
// outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	noRedirect.CloseIdleConnections()
	var leaks []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		leaks = leaks[:0]
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "edgeproxy/discovery/marathontest.") || strings.Contains(g, "edgeproxy/discovery.") ||
				strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*conn).serve") {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", strings.Join(leaks, "\n\n"))
		code = 1
	}
	os.Exit(code)
}
