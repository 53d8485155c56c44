package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"500", 500 * time.Millisecond, ""},
		{"0", 0, ""},
		{"100us", 100 * time.Microsecond, ""},
		{"20ms", 20 * time.Millisecond, ""},
		{"2s", 2 * time.Second, ""},
		{"3m", 3 * time.Minute, ""},
		{"1h", time.Hour, ""},
		{"7d", 7 * 24 * time.Hour, ""},
		{"2147483647", maxTime, ""},
		{"2147483648", 0, "too large (HAProxy's limit is 2147483647ms)"},
		{"25d", 0, "too large (HAProxy's limit is 2147483647ms)"},
		{"99999999999999999999999", 0, "too large"},
		{"5x", 0, `unknown unit "x" (want us, ms, s, m, h or d)`},
		{"5S", 0, `unknown unit "S" (want us, ms, s, m, h or d)`},
		{"1.5s", 0, `unknown unit ".5s" (want us, ms, s, m, h or d)`},
		{"-1s", 0, "want a number with an optional unit us, ms, s, m, h or d"},
		{"s", 0, "want a number with an optional unit us, ms, s, m, h or d"},
		{"", 0, "want a number with an optional unit us, ms, s, m, h or d"},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		errText := ""
		if err != nil {
			errText = err.Error()
		}
		if got != tt.want || errText != tt.wantErr {
			t.Errorf("parseTime(%q) = %v, %q; want %v, %q", tt.in, got, errText, tt.want, tt.wantErr)
		}
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"  weight\t20  ", []string{"weight", "20"}, ""},
		{`GET /x HTTP/1.1\r\nHost:\ a.b`, []string{"GET", "/x", `HTTP/1.1\r\nHost: a.b`}, ""},
		{"retries 3 # three", []string{"retries", "3"}, ""},
		{"# all comment", nil, ""},
		{"a#b", []string{"a#b"}, ""},
		{`option httpchk GET "/x"`, nil, `"\"" quoting is not supported in raw strings`},
		{"a\nb", nil, "contains a line break; put one directive per string"},
	}
	for _, tt := range tests {
		got, rerr := tokenize(tt.in)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if !reflect.DeepEqual(got, tt.want) || errText != tt.wantErr {
			t.Errorf("tokenize(%q) = %q, %q; want %q, %q", tt.in, got, errText, tt.want, tt.wantErr)
		}
	}
}

func TestParseServerOptions(t *testing.T) {
	def := defaultServerOptions()
	with := func(f func(*ServerOptions)) ServerOptions {
		o := def
		f(&o)
		return o
	}
	tests := []struct {
		in      string
		want    ServerOptions
		wantErr string
	}{
		{"", def, ""},
		{"weight 20", with(func(o *ServerOptions) { o.Weight = 20 }), ""},
		{"weight 0", with(func(o *ServerOptions) { o.Weight = 0 }), ""},
		{"weight 256", with(func(o *ServerOptions) { o.Weight = 256 }), ""},
		{"weight 257", def, `"257" is out of range 0..256 for weight`},
		{"weight -1", def, `"-1" is out of range 0..256 for weight`},
		{"weight +1", def, `"+1" is not an integer for weight`},
		{"weight", def, `"weight" needs a value`},
		{"maxconn 100 slowstart 1m", with(func(o *ServerOptions) { o.MaxConn = 100; o.SlowStart = time.Minute }), ""},
		{"inter 5s fall 2 rise 4 port 8081", with(func(o *ServerOptions) {
			o.Check.Inter = 5 * time.Second
			o.Check.Fall, o.Check.Rise, o.Check.Port = 2, 4, 8081
		}), ""},
		{"fastinter 1s downinter 10s", with(func(o *ServerOptions) { o.Check.FastInter, o.Check.DownInter = time.Second, 10*time.Second }), ""},
		{"inter 0", def, `"0" is not a valid time for inter: it must be greater than 0`},
		{"rise 0", def, `"0" is out of range 1..2147483647 for rise`},
		{"port 0", def, `"0" is out of range 1..65535 for port`},
		{"no-check", with(func(o *ServerOptions) { o.Check.Enabled = false }), ""},
		{"no-check check", def, ""},
		{"backup", def, `"backup" is not supported: edgeproxy has no backup servers (use weight 0 to keep a server out of rotation)`},
		{"timeout 5s", def, "\"timeout\" is not a server option: HAProxy has no per-server timeout; set `timeout check` or `timeout server` in the backend's miscStrs"},
		{"ssl verify none", def, `"ssl" is not a supported server option (edgeproxy accepts: weight, maxconn, slowstart, check, no-check, inter, fastinter, downinter, rise, fall, port)`},
	}
	for _, tt := range tests {
		o := def
		rerr := parseServerOptions(tt.in, &o)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if errText != tt.wantErr {
			t.Errorf("parseServerOptions(%q) error %q, want %q", tt.in, errText, tt.wantErr)
		}
		if rerr == nil && !reflect.DeepEqual(o, tt.want) {
			t.Errorf("parseServerOptions(%q) = %+v, want %+v", tt.in, o, tt.want)
		}
	}
}

func TestParseBackendLine(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		in      string
		want    backendOptions
		wantErr string
	}{
		{"", backendOptions{}, ""},
		{"timeout connect 5s", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{Connect: 5 * time.Second}}}, ""},
		{"timeout server 1m", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{Server: time.Minute}}}, ""},
		{"timeout queue 10s", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{Queue: 10 * time.Second}}}, ""},
		{"timeout tunnel 1h", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{Tunnel: time.Hour}}}, ""},
		{"timeout http-request 5s", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{HTTPRequest: 5 * time.Second}}}, ""},
		{"timeout http-keep-alive 2s", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{HTTPKeepAlive: 2 * time.Second}}}, ""},
		{"timeout check 900", backendOptions{BackendOptions: BackendOptions{Timeouts: Timeouts{Check: 900 * time.Millisecond}}}, ""},
		{"timeout server 0", backendOptions{}, `"0" is not a valid time for timeout server: it must be greater than 0`},
		{"timeout server", backendOptions{}, `"timeout server" needs a value`},
		{"timeout server 1s 2s", backendOptions{}, `"2s" is unexpected after "timeout server"`},
		{"timeout client 5s", backendOptions{}, "\"client\" is not a backend timeout: set `timeout client` in the frontend's miscStrs"},
		{"timeout tarpit 5s", backendOptions{}, `"tarpit" is not a supported timeout (edgeproxy accepts in a backend: connect, server, queue, tunnel, http-request, http-keep-alive, check)`},
		{"retries 0", backendOptions{BackendOptions: BackendOptions{Retries: 0}}, ""},
		{"retries 5", backendOptions{BackendOptions: BackendOptions{Retries: 5}}, ""},
		{"option redispatch", backendOptions{BackendOptions: BackendOptions{Redispatch: &yes}}, ""},
		{"no option redispatch", backendOptions{BackendOptions: BackendOptions{Redispatch: &no}}, ""},
		{"option redispatch 3", backendOptions{}, `"3" is unexpected after "option redispatch"`},
		{"no option httpchk", backendOptions{}, `"httpchk" is not a supported option (edgeproxy accepts: option redispatch, no option redispatch, option httpchk)`},
		{"no retries", backendOptions{}, `"no retries" is not supported (edgeproxy accepts: timeout, retries, option redispatch, no option redispatch, option httpchk, http-check expect status, balance)`},
		{"option httpchk", backendOptions{httpCheck: &HTTPCheck{Method: "OPTIONS", Path: "/", Version: "HTTP/1.0"}}, ""},
		{"option httpchk /ping", backendOptions{httpCheck: &HTTPCheck{Method: "OPTIONS", Path: "/ping", Version: "HTTP/1.0"}}, ""},
		{"option httpchk HEAD /ping HTTP/1.1", backendOptions{httpCheck: &HTTPCheck{Method: "HEAD", Path: "/ping", Version: "HTTP/1.1"}}, ""},
		{"http-check expect status 200", backendOptions{expectStatus: 200}, ""},
		{"http-check expect status 99", backendOptions{}, `"99" is out of range 100..599 for http-check expect status`},
		{"http-check expect string ok", backendOptions{}, "\"http-check expect string ok\" is not supported (edgeproxy accepts only `http-check expect status <code>`)"},
		{"http-check send-state", backendOptions{}, "\"http-check send-state\" is not supported (edgeproxy accepts only `http-check expect status <code>`)"},
		{"balance source", backendOptions{BackendOptions: BackendOptions{Balance: Source}}, ""},
		{"balance random(2)", backendOptions{BackendOptions: BackendOptions{Balance: Random, RandomDraws: 2}}, ""},
		{"http-reuse always", backendOptions{}, `"http-reuse" is not supported: edgeproxy manages its own backend connection reuse`},
		{"option forwardfor", backendOptions{}, `"forwardfor" is not a supported option (edgeproxy accepts: option redispatch, no option redispatch, option httpchk)`},
		{"acl is_x path /x", backendOptions{}, `"acl" is not a supported backend directive (edgeproxy accepts: timeout, retries, option redispatch, no option redispatch, option httpchk, http-check expect status, balance)`},
		{"http-request deny", backendOptions{}, `"http-request" is not a supported backend directive (edgeproxy accepts: timeout, retries, option redispatch, no option redispatch, option httpchk, http-check expect status, balance)`},
	}
	for _, tt := range tests {
		var o backendOptions
		rerr := parseBackendLine(tt.in, &o)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if errText != tt.wantErr {
			t.Errorf("parseBackendLine(%q) error %q, want %q", tt.in, errText, tt.wantErr)
		}
		if rerr == nil && !reflect.DeepEqual(o, tt.want) {
			t.Errorf("parseBackendLine(%q) = %+v, want %+v", tt.in, o, tt.want)
		}
	}
}

func TestParseHTTPChk(t *testing.T) {
	tests := []struct {
		in      string
		want    *HTTPCheck
		wantErr string
	}{
		{"", &HTTPCheck{Method: "OPTIONS", Path: "/", Version: "HTTP/1.0"}, ""},
		{"/health", &HTTPCheck{Method: "OPTIONS", Path: "/health", Version: "HTTP/1.0"}, ""},
		{"GET /health", &HTTPCheck{Method: "GET", Path: "/health", Version: "HTTP/1.0"}, ""},
		{"GET /health?full=1 HTTP/1.1", &HTTPCheck{Method: "GET", Path: "/health?full=1", Version: "HTTP/1.1"}, ""},
		{`GET / HTTP/1.1\r\nHost:\ www.example.com`, &HTTPCheck{Method: "GET", Path: "/", Version: "HTTP/1.1", Host: "www.example.com"}, ""},
		{`GET / HTTP/1.1\r\nUser-Agent:\ x`, nil, `"User-Agent: x" is not supported: edgeproxy accepts only a Host header in an httpchk version`},
		{"GET / HTTP/2", nil, `"HTTP/2" is not a supported HTTP version (HTTP/1.0 or HTTP/1.1)`},
		{"GET health", nil, `"health" is not a check URI: it must start with / and hold no blanks or control characters`},
		{`GET /a\ b`, nil, `"/a b" is not a check URI: it must start with / and hold no blanks or control characters`},
		{"G(T /", nil, `"G(T" is not an HTTP method`},
		{"GET / HTTP/1.1 extra", nil, `"extra" is unexpected: httpchk takes [<method>] <uri> [<version>]`},
	}
	for _, tt := range tests {
		got, rerr := parseHTTPChkString(tt.in)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if errText != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseHTTPChkString(%q) = %+v, %q; want %+v, %q", tt.in, got, errText, tt.want, tt.wantErr)
		}
	}
}

func TestParseBalance(t *testing.T) {
	tests := []struct {
		in      string
		want    Balance
		draws   int
		wantErr string
	}{
		{"", RoundRobin, 0, ""},
		{"roundrobin", RoundRobin, 0, ""},
		{"static-rr", StaticRR, 0, ""},
		{"leastconn", LeastConn, 0, ""},
		{"source", Source, 0, ""},
		{"random", Random, 0, ""},
		{"random(5)", Random, 5, ""},
		{"random(0)", "", 0, `"random(0)" has a draw count that is out of range 1..100`},
		{"random(x)", "", 0, `"random(x)" has a draw count that is not an integer`},
		{"first", "", 0, `"first" is not supported: edgeproxy does not fill servers up to maxconn in order`},
		{"uri", "", 0, `"uri" is not supported: hash-based balancing is not implemented (edgeproxy accepts roundrobin, static-rr, leastconn, source, random, random(N))`},
		{"hdr(host)", "", 0, `"hdr(host)" is not supported: hash-based balancing is not implemented (edgeproxy accepts roundrobin, static-rr, leastconn, source, random, random(N))`},
		{"url_param userid", "", 0, `"url_param" is not supported: hash-based balancing is not implemented (edgeproxy accepts roundrobin, static-rr, leastconn, source, random, random(N))`},
		{"RoundRobin", "", 0, `"RoundRobin" is not a balance algorithm edgeproxy knows (roundrobin, static-rr, leastconn, source, random, random(N))`},
		{"leastconn now", "", 0, `"now" is unexpected after "balance leastconn"`},
	}
	for _, tt := range tests {
		got, draws, rerr := parseBalance(tt.in)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if got != tt.want || draws != tt.draws || errText != tt.wantErr {
			t.Errorf("parseBalance(%q) = %q, %d, %q; want %q, %d, %q", tt.in, got, draws, errText, tt.want, tt.draws, tt.wantErr)
		}
	}
}

func TestParseFrontendLineAndBind(t *testing.T) {
	tests := []struct {
		line, bind string
		want       FrontendOptions
		wantErr    string
	}{
		{"timeout client 1m", "", FrontendOptions{Timeouts: Timeouts{Client: time.Minute}}, ""},
		{"timeout http-request 5s", "", FrontendOptions{Timeouts: Timeouts{HTTPRequest: 5 * time.Second}}, ""},
		{"timeout http-keep-alive 75s", "", FrontendOptions{Timeouts: Timeouts{HTTPKeepAlive: 75 * time.Second}}, ""},
		{"maxconn 5000", "accept-proxy", FrontendOptions{MaxConn: 5000, AcceptProxy: true}, ""},
		{"maxconn 0", "", FrontendOptions{}, `"0" is out of range 1..2147483647 for maxconn`},
		{"timeout connect 1s", "", FrontendOptions{}, "\"connect\" is not a frontend timeout: set `timeout connect` in the backend's miscStrs"},
		{"use_backend x if y", "", FrontendOptions{}, `"use_backend" is not a supported frontend directive (edgeproxy accepts: timeout client, timeout http-request, timeout http-keep-alive, maxconn)`},
		{"", "ssl crt /x", FrontendOptions{}, `"ssl" is not a supported bind option (edgeproxy accepts: accept-proxy)`},
	}
	for _, tt := range tests {
		var o FrontendOptions
		rerr := parseFrontendLine(tt.line, &o)
		if rerr == nil {
			rerr = parseBindModifier(tt.bind, &o)
		}
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if errText != tt.wantErr {
			t.Errorf("%q / %q: error %q, want %q", tt.line, tt.bind, errText, tt.wantErr)
		}
		if rerr == nil && !reflect.DeepEqual(o, tt.want) {
			t.Errorf("%q / %q = %+v, want %+v", tt.line, tt.bind, o, tt.want)
		}
	}
}

func TestParseSticky(t *testing.T) {
	tests := []struct {
		in      string
		want    *StickyOptions
		wantErr string
	}{
		{"cookie SRV insert", &StickyOptions{Cookie: "SRV"}, ""},
		{"cookie SRV insert indirect nocache httponly secure", &StickyOptions{Cookie: "SRV", Indirect: true, NoCache: true, HTTPOnly: true, Secure: true}, ""},
		{"cookie SRV", nil, `"cookie SRV" is not supported: edgeproxy implements the cookie insert mode only`},
		{"cookie SRV insert domain x", nil, `"domain" is not a supported cookie option (indirect, nocache, httponly, secure)`},
		{"cookie S;V insert", nil, `"S;V" is not a valid cookie name`},
		{"stick-table type ip", nil, "\"stick-table type ip\" is not supported (edgeproxy accepts `cookie <name> insert [indirect] [nocache] [httponly] [secure]`)"},
	}
	for _, tt := range tests {
		got, rerr := parseSticky(tt.in)
		errText := ""
		if rerr != nil {
			errText = rerr.Error()
		}
		if errText != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSticky(%q) = %+v, %q; want %+v, %q", tt.in, got, errText, tt.want, tt.wantErr)
		}
	}
}

// The accessors return what testdata/input/raw-strings.json spells out.
func TestOptionsAccessors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "input", "raw-strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, data)
	fes, bes := p.Haproxy.Frontends, p.Haproxy.Backends
	no, yes := false, true

	if got, want := fes[0].Options(), (FrontendOptions{MaxConn: 20000, AcceptProxy: true, Timeouts: Timeouts{
		Client: time.Minute, HTTPRequest: 10 * time.Second, HTTPKeepAlive: 75 * time.Second,
	}}); got != want {
		t.Errorf("frontend web options = %+v, want %+v", got, want)
	}
	if got := fes[1].Options(); got != (FrontendOptions{}) {
		t.Errorf("frontend 1 options = %+v, want zero", got)
	}

	web := &bes[0]
	wantWeb := BackendOptions{Balance: LeastConn, Retries: 2, Redispatch: &no, Timeouts: Timeouts{
		Connect: 5 * time.Second, Server: 2 * time.Minute, Check: 1500 * time.Millisecond,
	}}
	if got := web.Options(); !reflect.DeepEqual(got, wantWeb) {
		t.Errorf("backend web options = %+v, want %+v", got, wantWeb)
	}
	httpCheck := &HTTPCheck{Method: "GET", Path: "/healthz", Version: "HTTP/1.1", Host: "web.example.com", ExpectStatus: 204}
	wantV1 := ServerOptions{Weight: 20, MaxConn: 100, SlowStart: 30 * time.Second, Check: CheckOptions{
		Enabled: true, Inter: 5 * time.Second, FastInter: 5 * time.Second, DownInter: 5 * time.Second,
		Timeout: 1500 * time.Millisecond, Rise: 3, Fall: 2, Port: 8081, HTTP: httpCheck,
	}}
	if got := web.Services[0].Server(web); !reflect.DeepEqual(got, wantV1) {
		t.Errorf("web service 0 = %+v\nwant %+v", got, wantV1)
	}
	// check.enabled false: customStr has no effect, as in Edge-LB.
	wantV2 := ServerOptions{Weight: 0, Check: CheckOptions{
		Enabled: false, Inter: DefaultInter, FastInter: DefaultInter, DownInter: DefaultInter,
		Timeout: 1500 * time.Millisecond, Rise: DefaultRise, Fall: DefaultFall, HTTP: httpCheck,
	}}
	if got := web.Services[1].Server(web); !reflect.DeepEqual(got, wantV2) {
		t.Errorf("web service 1 = %+v\nwant %+v", got, wantV2)
	}
	if re := web.Services[1].Marathon.ServiceIDRegexp(); re == nil || !re.MatchString("/web-v2-canary") || re.MatchString("/web-v3") {
		t.Errorf("ServiceIDRegexp = %v", re)
	}
	if web.Services[0].Marathon.ServiceIDRegexp() != nil {
		t.Errorf("ServiceIDRegexp without a pattern is not nil")
	}

	api := &bes[1]
	wantAPI := BackendOptions{Balance: Random, RandomDraws: 3, Retries: -1, Redispatch: &yes, Timeouts: Timeouts{Tunnel: time.Hour}}
	if got := api.Options(); !reflect.DeepEqual(got, wantAPI) {
		t.Errorf("backend api options = %+v, want %+v", got, wantAPI)
	}
	wantAPIServer := ServerOptions{Weight: 1, Check: CheckOptions{
		Enabled: true, Inter: DefaultInter, FastInter: 500 * time.Millisecond, DownInter: 10 * time.Second,
		Timeout: DefaultInter, Rise: DefaultRise, Fall: DefaultFall,
		HTTP: &HTTPCheck{Method: "GET", Path: "/status", Version: "HTTP/1.0"},
	}}
	if got := api.Services[0].Server(api); !reflect.DeepEqual(got, wantAPIServer) {
		t.Errorf("api server = %+v\nwant %+v", got, wantAPIServer)
	}

	kafka := &bes[2]
	if got := kafka.Options(); got.Balance != Source || got.Timeouts.Server != time.Hour || got.Sticky != nil {
		t.Errorf("backend kafka options = %+v", got)
	}
	if got := kafka.Services[0].Server(kafka); got.Check.HTTP != nil || got.Check.Inter != 10*time.Second || got.Check.Timeout != 10*time.Second {
		t.Errorf("kafka server = %+v, want a TCP check every 10s", got)
	}
	// Without the backend, the service's own settings and defaults.
	if got := web.Services[0].Server(nil); got.Check.HTTP != nil || got.Check.Timeout != 5*time.Second || got.Weight != 20 {
		t.Errorf("Server(nil) = %+v", got)
	}

	m := fes[0].LinkBackend.Map
	if re := m[1].HostRegexp(); re == nil || !re.MatchString("WWW.example.com") || re.MatchString("api.example.com") {
		t.Errorf("HostRegexp = %v, want case-insensitive ^(www|static)...", re)
	}
	if re := m[2].PathRegexp(); re == nil || !re.MatchString("/a/b.css") || re.MatchString("/a/b.CSS") {
		t.Errorf("PathRegexp = %v, want case-sensitive", re)
	}
	if m[0].HostRegexp() != nil || m[0].PathRegexp() != nil {
		t.Errorf("regexps set for a map entry without hostReg/pathReg")
	}
}

func TestOptionsDefaults(t *testing.T) {
	p := mustParse(t, poolJSON(t))
	b := &p.Haproxy.Backends[0]
	if got, want := b.Options(), (BackendOptions{Balance: RoundRobin, Retries: -1}); !reflect.DeepEqual(got, want) {
		t.Errorf("default backend options = %+v, want %+v", got, want)
	}
	want := ServerOptions{Weight: 1, Check: CheckOptions{
		Enabled: true, Inter: 2 * time.Second, FastInter: 2 * time.Second, DownInter: 2 * time.Second,
		Timeout: 2 * time.Second, Rise: 2, Fall: 3,
	}}
	if got := b.Services[0].Server(b); !reflect.DeepEqual(got, want) {
		t.Errorf("default server = %+v, want %+v", got, want)
	}
	// Values not built by Parse fall back to the same defaults.
	var zb Backend
	var zs Service
	var zf Frontend
	if got := zb.Options(); !reflect.DeepEqual(got, BackendOptions{Balance: RoundRobin, Retries: -1}) {
		t.Errorf("zero Backend options = %+v", got)
	}
	if got := zs.Server(&zb); !reflect.DeepEqual(got, want) {
		t.Errorf("zero Service server = %+v", got)
	}
	if got := zf.Options(); got != (FrontendOptions{}) {
		t.Errorf("zero Frontend options = %+v", got)
	}
}

func TestStickyOptions(t *testing.T) {
	tests := []struct {
		name  string
		pairs []any
		want  *StickyOptions
	}{
		{"absent", nil, nil},
		{"empty object", []any{be0 + ".rewriteHttp.sticky", map[string]any{}},
			&StickyOptions{Cookie: DefaultStickyCookie, Indirect: true, NoCache: true}},
		{"disabled", []any{be0 + ".rewriteHttp.sticky", map[string]any{"enabled": false}}, nil},
		{"custom", []any{be0 + ".rewriteHttp.sticky", map[string]any{"customStr": "cookie S insert secure"}}, &StickyOptions{Cookie: "S", Secure: true}},
		{"TCP backend ignores it", []any{be0 + ".rewriteHttp.sticky", map[string]any{}, be0 + ".protocol", "TCP", fe0 + ".protocol", "TCP"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, poolJSON(t, tt.pairs...))
			if got := p.Haproxy.Backends[0].Options().Sticky; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Sticky = %+v, want %+v", got, tt.want)
			}
		})
	}
}
