package healthcheck

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"disabled stays as is", Config{Rise: 0}, Config{}},
		{
			"HAProxy defaults",
			Config{Enabled: true},
			Config{Enabled: true, Inter: 2 * time.Second, FastInter: 2 * time.Second, DownInter: 2 * time.Second,
				Timeout: 2 * time.Second, Rise: 2, Fall: 3, ErrorLimit: 3},
		},
		{
			"intervals follow inter, error limit follows fall",
			Config{Enabled: true, Inter: 5 * time.Second, Fall: 4},
			Config{Enabled: true, Inter: 5 * time.Second, FastInter: 5 * time.Second, DownInter: 5 * time.Second,
				Timeout: 5 * time.Second, Rise: 2, Fall: 4, ErrorLimit: 4},
		},
		{
			"explicit values kept",
			Config{Enabled: true, Inter: time.Second, FastInter: 100 * time.Millisecond, DownInter: 10 * time.Second,
				Timeout: 300 * time.Millisecond, Rise: 1, Fall: 1, ErrorLimit: -1, Port: 8080, SlowStart: time.Minute},
			Config{Enabled: true, Inter: time.Second, FastInter: 100 * time.Millisecond, DownInter: 10 * time.Second,
				Timeout: 300 * time.Millisecond, Rise: 1, Fall: 1, ErrorLimit: -1, Port: 8080, SlowStart: time.Minute},
		},
	}
	for _, tt := range tests {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}

	in := Config{Enabled: true, HTTP: &HTTPCheck{Host: "app.example"}}
	got := in.WithDefaults().HTTP
	if *got != (HTTPCheck{Method: "GET", Path: "/", Host: "app.example"}) {
		t.Errorf("HTTP defaults: %+v", *got)
	}
	if in.HTTP.Method != "" {
		t.Error("WithDefaults modified the caller's HTTPCheck")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"zero", Config{}, ""},
		{"full", Config{Enabled: true, Inter: time.Second, Rise: 1, Fall: 1, Port: 65535,
			HTTP: &HTTPCheck{Method: "HEAD", Path: "/health?x=1", Host: "a.b:80", ExpectStatus: 204}}, ""},
		{"negative inter", Config{Inter: -1}, "inter -1ns is negative"},
		{"negative timeout", Config{Timeout: -time.Second}, "timeout -1s is negative"},
		{"negative slowstart", Config{SlowStart: -1}, "slowstart"},
		{"huge slowstart", Config{SlowStart: 25 * time.Hour}, "exceeds"},
		{"negative rise", Config{Rise: -1}, "rise -1"},
		{"negative fall", Config{Fall: -2}, "fall -2"},
		{"port out of range", Config{Port: 70000}, "port 70000"},
		{"method with space", Config{HTTP: &HTTPCheck{Method: "GET /"}}, `method "GET /"`},
		{"relative path", Config{HTTP: &HTTPCheck{Path: "health"}}, `path "health"`},
		{"path injecting a header", Config{HTTP: &HTTPCheck{Path: "/x HTTP/1.1\r\nX-Evil: 1"}}, "path"},
		{"host with CRLF", Config{HTTP: &HTTPCheck{Host: "a\r\nb: c"}}, "host"},
		{"bad status", Config{HTTP: &HTTPCheck{ExpectStatus: 42}}, "status 42"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		case err != nil && !errors.Is(err, ErrInvalidConfig):
			t.Errorf("%s: error %v does not wrap ErrInvalidConfig", tt.name, err)
		}
	}
}

func TestAddRejects(t *testing.T) {
	c := newChecker(t, Options{})
	for _, tt := range []struct {
		addr string
		cfg  Config
	}{
		{"127.0.0.1", Config{}},
		{"127.0.0.1:0", Config{}},
		{"127.0.0.1:http", Config{}},
		{":8080", Config{}},
		{"127.0.0.1:8080", Config{Enabled: true, Rise: -1}},
	} {
		if tg, err := c.Add(tt.addr, tt.cfg); err == nil || !errors.Is(err, ErrInvalidConfig) || tg != nil {
			t.Errorf("Add(%q, %+v) = %v, %v; want an ErrInvalidConfig", tt.addr, tt.cfg, tg, err)
		}
	}
	if len(c.Targets()) != 0 {
		t.Errorf("rejected Targets were kept: %v", c.Targets())
	}
}

func TestBuildRequest(t *testing.T) {
	for _, tt := range []struct {
		h    HTTPCheck
		addr string
		want string
	}{
		{HTTPCheck{Method: "GET", Path: "/"}, "10.0.0.1:8080",
			"GET / HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nUser-Agent: edgeproxy-healthcheck\r\nConnection: close\r\n\r\n"},
		{HTTPCheck{Method: "HEAD", Path: "/health", Host: "app.example"}, "[::1]:80",
			"HEAD /health HTTP/1.1\r\nHost: app.example\r\nUser-Agent: edgeproxy-healthcheck\r\nConnection: close\r\n\r\n"},
	} {
		if got := string(buildRequest(&tt.h, tt.addr)); got != tt.want {
			t.Errorf("buildRequest(%+v, %q) =\n%q\nwant\n%q", tt.h, tt.addr, got, tt.want)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tt := range []struct {
		addr string
		port int
		want string
	}{
		{"10.0.0.1:8080", 0, "10.0.0.1:8080"},
		{"10.0.0.1:8080", 9000, "10.0.0.1:9000"},
		{"[fd00::1]:8080", 9000, "[fd00::1]:9000"},
		{"app.marathon.l4lb.thisdcos.directory:80", 0, "app.marathon.l4lb.thisdcos.directory:80"},
	} {
		if got, err := checkAddress(tt.addr, tt.port); err != nil || got != tt.want {
			t.Errorf("checkAddress(%q, %d) = %q, %v; want %q", tt.addr, tt.port, got, err, tt.want)
		}
	}
}
