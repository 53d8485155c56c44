package healthcheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
)

func TestParseStatusLine(t *testing.T) {
	for _, tt := range []struct {
		line     string
		complete bool
		code     int
		ok       bool
	}{
		{"HTTP/1.1 200 OK\r", true, 200, true},
		{"HTTP/1.0 503 Service Unavailable", true, 503, true},
		{"HTTP/1.1 204\r", true, 204, true},
		{"HTTP/1.1 204", false, 0, false}, // might go on: "HTTP/1.1 2045"
		{"HTTP/1.1 200 OK and a very long reason", false, 200, true},
		{"HTTP/1.1 2000 OK", true, 0, false},
		{"HTTP/1.1 20 OK", true, 0, false},
		{"HTTP/1.1 099 Low", true, 0, false},
		{"HTTP/2.0 200 OK", true, 0, false},
		{"HTTP/1.x 200 OK", true, 0, false},
		{"http/1.1 200 OK", true, 0, false},
		{"HTTP/1.1  200 OK", true, 0, false},
		{"HTTP/1.1 2x0 OK", true, 0, false},
		{"SSH-2.0-OpenSSH_9.6", true, 0, false},
		{"", true, 0, false},
		{"\r", true, 0, false},
	} {
		code, ok := parseStatusLine([]byte(tt.line), tt.complete)
		if code != tt.code || ok != tt.ok {
			t.Errorf("parseStatusLine(%q, %v) = %d, %v; want %d, %v", tt.line, tt.complete, code, ok, tt.code, tt.ok)
		}
	}
}

func FuzzParseStatusLine(f *testing.F) {
	for _, s := range []string{"HTTP/1.1 200 OK\r", "HTTP/1.0 404", "HTTP/1.1 999 x", "garbage"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, complete bool) {
		code, ok := parseStatusLine(line, complete)
		if ok != (code != 0) || ok && (code < 100 || code > 999) {
			t.Fatalf("parseStatusLine(%q, %v) = %d, %v", line, complete, code, ok)
		}
		if ok && string(line[:7]) != "HTTP/1." {
			t.Fatalf("accepted %q", line)
		}
	})
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

func TestIsTimeout(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.EOF, false},
		{os.ErrDeadlineExceeded, true},
		{fmt.Errorf("dial: %w", timeoutErr{}), true},
		{fmt.Errorf("read: %w", errors.New("connection reset by peer")), false},
	} {
		if got := isTimeout(tt.err); got != tt.want {
			t.Errorf("isTimeout(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{StateChecking.String(), "CHECKING"},
		{StateUp.String(), "UP"},
		{StateDown.String(), "DOWN"},
		{StateDraining.String(), "DRAIN"},
		{State(42).String(), "UNKNOWN"},
		{ResultNone.String(), "INI"},
		{ResultL4OK.String(), "L4OK"},
		{ResultL4Timeout.String(), "L4TOUT"},
		{ResultL4Conn.String(), "L4CON"},
		{ResultL7OK.String(), "L7OK"},
		{ResultL7Timeout.String(), "L7TOUT"},
		{ResultL7Response.String(), "L7RSP"},
		{ResultL7Status.String(), "L7STS"},
		{Result(42).String(), "UNK"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
