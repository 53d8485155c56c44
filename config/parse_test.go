package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", []string{"invalid JSON: empty document"}},
		{"blank", " \n ", []string{"invalid JSON: empty document"}},
		{"truncated", `{"name": "a",`, []string{"invalid JSON at line 1, column 14 (byte 13): unexpected end of input"}},
		{"syntax error position", "{\n  \"name\": \"a\"\n  \"x\": 1\n}", []string{`invalid JSON at line 3, column 3 (byte 18): invalid character '"' after object key:value pair`}},
		{"trailing data", `{"name": "a"} {}`, []string{"invalid JSON at line 1, column 16 (byte 15): unexpected data after the top-level value"}},
		{"duplicate key", `{"name": "a", "name": "b"}`, []string{`ambiguous JSON at line 1, column 21 (byte 20): duplicate key "name"`}},
		{"not an object", `[1]`, []string{`"[...]" is an array, want a pool object`}},
		{"string", `"pool"`, []string{`"pool" is a string, want a pool object`}},
		{"V1 apiVersion", `{"apiVersion": "V1", "name": "a"}`, []string{`apiVersion: "V1" ` + v1Message}},
		{"V1 wrapper", `{"pools": [{"name": "a"}]}`, []string{"pools: is the V1 configuration wrapper. " + v1Message}},
		{"V2 wrapper", `{"pools": [{"apiVersion": "V2", "name": "a"}]}`, []string{`pools: is a configuration of several pools; edgeproxy reads one pool object: pass one element of "pools"`}},
		{"V1 servers without apiVersion", `{"name": "a", "haproxy": {"backends": [{"name": "b"}, {"name": "c", "servers": []}]}}`,
			[]string{"haproxy.backends[1].servers: is a V1 field. " + v1Message}},
		{"type errors do not cascade", `{"name": "a", "haproxy": {"frontends": {"bindPort": 80}}}`,
			[]string{`haproxy.frontends: "{...}" is an object, want an array`}},
		{"type error in backend name", `{"name": "a", "haproxy": {"backends": [{"name": 5, "protocol": "HTTP", "services": [{"marathon": {"serviceID": "/a"}, "endpoint": {"portName": "p"}}]}]}}`,
			[]string{`haproxy.backends[0].name: "5" is a number, want a string`}},
		{"unknown top-level field", `{"name": "a", "haproxy": {}, "frontends": []}`, []string{`frontends: unknown field`}},
		{"case hint", `{"Name": "a"}`, []string{`Name: unknown field (did you mean "name"? names are case-sensitive)`, "name: is required"}},
		{"environment values are strings", `{"name": "a", "environmentVariables": {"A": 1}}`, []string{`environmentVariables["A"]: "1" is a number, want a string`}},
		{"labels", `{"name": "a", "virtualNetworks": [{"name": "n", "labels": []}]}`, []string{`virtualNetworks[0].labels: "[...]" is an array, want an object`}},
		{"float for int32", `{"name": "a", "count": 2.0}`, []string{`count: "2.0" is not an integer`}},
		{"huge float", `{"name": "a", "cpus": 1e400}`, []string{`cpus: "1e400" is out of range`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrors(t, []byte(tt.in))
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSyntaxErrorUnwraps(t *testing.T) {
	_, err := Parse([]byte(`{"name": }`))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not unwrap to *json.SyntaxError", err)
	}
}

func TestNullMeansAbsent(t *testing.T) {
	p := mustParse(t, poolJSON(t, "namespace", nil, "count", nil, "ports", nil, fe0+".certificates", nil, be0+".balance", nil))
	if *p.Namespace != DefaultNamespace || *p.Count != DefaultCount || p.Ports == nil ||
		p.Haproxy.Frontends[0].Certificates == nil || p.Haproxy.Backends[0].Balance != DefaultBalance {
		t.Errorf("null fields did not get their defaults: %+v", p)
	}
}

func TestDefaults(t *testing.T) {
	p := mustParse(t, poolJSON(t, "apiVersion", del{}))
	f := p.Haproxy.Frontends[0]
	b := p.Haproxy.Backends[0]
	e := b.Services[0].Endpoint
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"apiVersion", p.APIVersion, "V2"},
		{"namespace", *p.Namespace, "dcos-edgelb/pools"},
		{"packageName", p.PackageName, "edgelb-pool"},
		{"packageVersion", p.PackageVersion, ""},
		{"role", p.Role, "slave_public"},
		{"principal", p.Principal, (*string)(nil)},
		{"cpus", *p.CPUs, 0.9},
		{"cpusAdminOverhead", *p.CPUsAdminOverhead, 0.1},
		{"mem", *p.Mem, int32(992)},
		{"memAdminOverhead", *p.MemAdminOverhead, int32(32)},
		{"disk", *p.Disk, int32(256)},
		{"count", *p.Count, int32(1)},
		{"constraints", *p.Constraints, "hostname:UNIQUE"},
		{"ports", p.Ports, []int32{}},
		{"secrets", p.Secrets, []Secret{}},
		{"virtualNetworks", p.VirtualNetworks, []VirtualNetwork{}},
		{"autoCertificate", *p.AutoCertificate, false},
		{"poolHealthcheckGracePeriod", *p.PoolHealthcheckGracePeriod, int32(180)},
		{"poolHealthcheckInterval", *p.PoolHealthcheckInterval, int32(12)},
		{"poolHealthcheckMaxFail", *p.PoolHealthcheckMaxFail, int32(5)},
		{"poolHealthcheckTimeout", *p.PoolHealthcheckTimeout, int32(60)},
		{"stats.bindAddress", p.Haproxy.Stats.BindAddress, "0.0.0.0"},
		{"stats.bindPort", *p.Haproxy.Stats.BindPort, int32(9090)},
		{"frontend.name", f.Name, "frontend_0.0.0.0_80"},
		{"frontend.bindAddress", f.BindAddress, "0.0.0.0"},
		{"frontend.certificates", f.Certificates, []string{}},
		{"frontend.miscStrs", f.MiscStrs, []string{}},
		{"frontend.linkBackend.map", f.LinkBackend.Map, []RouteMap{}},
		{"frontend.redirectToHttps", f.RedirectToHTTPS, (*RedirectToHTTPS)(nil)},
		{"backend.balance", b.Balance, "roundrobin"},
		{"backend.miscStrs", b.MiscStrs, []string{}},
		{"backend.customCheck", b.CustomCheck, (*CustomCheck)(nil)},
		{"rewriteHttp.request.forwardfor", *b.RewriteHTTP.Request.Forwardfor, true},
		{"rewriteHttp.request.xForwardedPort", *b.RewriteHTTP.Request.XForwardedPort, true},
		{"rewriteHttp.request.xForwardedProtoHttpsIfTls", *b.RewriteHTTP.Request.XForwardedProtoHTTPSIfTLS, true},
		{"rewriteHttp.request.setHostHeader", *b.RewriteHTTP.Request.SetHostHeader, true},
		{"rewriteHttp.request.rewritePath", *b.RewriteHTTP.Request.RewritePath, true},
		{"rewriteHttp.response.rewriteLocation", *b.RewriteHTTP.Response.RewriteLocation, true},
		{"rewriteHttp.path", b.RewriteHTTP.Path, (*RewritePath)(nil)},
		{"rewriteHttp.sticky", b.RewriteHTTP.Sticky, (*Sticky)(nil)},
		{"endpoint.type", e.Type, AutoIP},
		{"endpoint.port", *e.Port, int32(-1)},
		{"endpoint.allPorts", *e.AllPorts, false},
		{"endpoint.check.enabled", *e.Check.Enabled, true},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
}

func TestDefaultsOfPresentObjects(t *testing.T) {
	p := mustParse(t, poolJSON(t,
		fe0+".redirectToHttps", map[string]any{},
		be0+".rewriteHttp", map[string]any{"path": map[string]any{}, "sticky": map[string]any{}, "request": map[string]any{"forwardfor": false}},
		be0+".customCheck", map[string]any{},
		fe0+".bindAddress", "10.0.0.1",
		fe0+".bindPort", 0,
	))
	f, b := p.Haproxy.Frontends[0], p.Haproxy.Backends[0]
	if f.RedirectToHTTPS == nil || f.RedirectToHTTPS.Except == nil || len(f.RedirectToHTTPS.Except) != 0 {
		t.Errorf("redirectToHttps.except = %#v, want []", f.RedirectToHTTPS)
	}
	if f.Name != "frontend_10.0.0.1_0" {
		t.Errorf("derived name = %q", f.Name)
	}
	rw := b.RewriteHTTP
	if *rw.Path.FromPath != "" || *rw.Path.ToPath != "" {
		t.Errorf("rewriteHttp.path = %q, %q, want empty strings", *rw.Path.FromPath, *rw.Path.ToPath)
	}
	if !*rw.Sticky.Enabled {
		t.Errorf("sticky.enabled defaults to false")
	}
	if *rw.Request.Forwardfor || !*rw.Request.XForwardedPort {
		t.Errorf("request switches: an explicit false must stay, the others default to true")
	}
	if *b.CustomCheck.HTTPChk || *b.CustomCheck.SSLHelloChk {
		t.Errorf("customCheck booleans default to true")
	}
}

func TestApplyBindAddress(t *testing.T) {
	p := mustParse(t, poolJSON(t, "haproxy.frontends[1]", map[string]any{"name": "named", "bindPort": 81, "bindAddress": "10.1.1.1", "protocol": "HTTP"}))
	ApplyBindAddress(p, "127.0.0.1")
	fes := p.Haproxy.Frontends
	if p.Haproxy.Stats.BindAddress != "127.0.0.1" || fes[0].BindAddress != "127.0.0.1" || fes[1].BindAddress != "127.0.0.1" {
		t.Errorf("bind addresses not overridden: %q %q %q", p.Haproxy.Stats.BindAddress, fes[0].BindAddress, fes[1].BindAddress)
	}
	if fes[0].Name != "frontend_0.0.0.0_80" || fes[1].Name != "named" {
		t.Errorf("names changed: %q %q", fes[0].Name, fes[1].Name)
	}
}

func TestMarshalEffectiveRedactsFileVariables(t *testing.T) {
	p := mustParse(t, poolJSON(t, "environmentVariables", map[string]any{"ELB_FILE_KEY": "-----BEGIN PRIVATE KEY-----", "LOG_LEVEL": "debug"}))
	out, err := p.MarshalEffective()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "PRIVATE KEY") || !strings.Contains(s, `"ELB_FILE_KEY": "<redacted: 27 bytes>"`) || !strings.Contains(s, `"LOG_LEVEL": "debug"`) {
		t.Errorf("environment variables not rendered as expected:\n%s", s)
	}
	if p.EnvironmentVariables["ELB_FILE_KEY"] != "-----BEGIN PRIVATE KEY-----" {
		t.Errorf("MarshalEffective modified the pool")
	}
	if !strings.HasSuffix(s, "}\n") || !strings.HasPrefix(s, "{\n  \"apiVersion\": \"V2\",\n") {
		t.Errorf("unexpected layout:\n%s", s)
	}
}

func TestMarshalEffectiveDoesNotEscapeHTML(t *testing.T) {
	p := mustParse(t, poolJSON(t, fe0+".linkBackend.map", []any{map[string]any{"backend": "be", "pathReg": "^/a&b<c>"}}))
	out, err := p.MarshalEffective()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"pathReg": "^/a&b<c>"`) {
		t.Errorf("pathReg escaped:\n%s", out)
	}
}

func TestParseFile(t *testing.T) {
	p, err := ParseFile(filepath.Join("testdata", "input", "minimal.json"))
	if err != nil || p.Name != "minimal" {
		t.Fatalf("ParseFile = %v, %v", p, err)
	}
	_, err = ParseFile(filepath.Join("testdata", "no-such-file.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read pool config: ") {
		t.Errorf("missing file error = %v", err)
	}
	_, err = ParseFile(filepath.Join("testdata", "input", "syntax-error.json"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Errorf("syntax error = %v, want one Errors entry", err)
	}
}

func TestErrorsFormatting(t *testing.T) {
	errs := Errors{
		{Path: "a.b", Value: "x\"y", Msg: "is bad"},
		{Path: "c", Msg: "is required"},
		{Msg: "whole document"},
	}
	want := "a.b: \"x\\\"y\" is bad\nc: is required\nwhole document"
	if errs.Error() != want {
		t.Errorf("Error() = %q, want %q", errs.Error(), want)
	}
	var fe *FieldError
	if !errors.As(error(errs), &fe) || fe.Path != "a.b" {
		t.Errorf("errors.As does not reach the first FieldError")
	}
	cause := errors.New("cause")
	if !errors.Is(error(Errors{{Msg: "m", Err: cause}}), cause) {
		t.Errorf("errors.Is does not reach the cause")
	}
}

func TestUnsupported(t *testing.T) {
	p := mustParse(t, poolJSON(t,
		"autoCertificate", true,
		"virtualNetworks", []any{map[string]any{"name": "dcos"}},
		"cloudProvider", map[string]any{"aws": map[string]any{"elbs": []any{}}},
		fe0+".redirectToHttps", map[string]any{},
		"haproxy.frontends[1]", map[string]any{"bindPort": 443, "protocol": "HTTPS", "certificates": []string{"$AUTOCERT"}, "linkBackend": map[string]any{"defaultBackend": "tls"}},
		"haproxy.frontends[2]", map[string]any{"bindPort": 8443, "protocol": "TLS", "certificates": []string{"$AUTOCERT"}, "linkBackend": map[string]any{"defaultBackend": "tcp"}},
		be0+".customCheck", map[string]any{"sslHelloChk": true},
		be0+".rewriteHttp", map[string]any{"host": "x", "path": map[string]any{"fromPath": "/a", "toPath": "/b"}, "sticky": map[string]any{}},
		sv0+".marathon.containerName", "c",
		"haproxy.backends[0].services[1]", map[string]any{"mesos": map[string]any{"frameworkName": "f", "taskName": "t"}, "endpoint": map[string]any{"allPorts": true}},
		"haproxy.backends[1]", map[string]any{"name": "tls", "protocol": "HTTPS", "services": []any{svc}},
		"haproxy.backends[2]", map[string]any{"name": "tcp", "protocol": "TCP", "rewriteHttp": map[string]any{"host": "ignored", "sticky": map[string]any{}}, "services": []any{svc}},
	))
	var got []string
	for _, w := range p.Unsupported() {
		got = append(got, w.Error())
	}
	want := []string{
		"autoCertificate: is not acted on: edgeproxy does not generate the self-signed $AUTOCERT certificate",
		"virtualNetworks: is not acted on: joining virtual networks is the pool scheduler's job",
		"cloudProvider: is not acted on: edgeproxy does not create or manage load balancers from the pool; its own ELB registration is configured separately",
		"haproxy.frontends[0].redirectToHttps: is not supported yet: redirects to HTTPS",
		`haproxy.frontends[1].protocol: "HTTPS" is not supported yet: HTTPS frontends (TLS termination)`,
		`haproxy.frontends[2].protocol: "TLS" is not supported yet: TLS frontends (SNI routing without termination)`,
		"haproxy.backends[0].customCheck.sslHelloChk: is not supported yet: SSL hello health checks",
		"haproxy.backends[0].rewriteHttp.path: is not supported yet: path prefix rewriting",
		"haproxy.backends[0].rewriteHttp.sticky: is not supported yet: cookie stickiness",
		`haproxy.backends[0].services[0].marathon.containerName: "c" is not supported yet: selecting a container of a Marathon pod`,
		"haproxy.backends[0].services[1].mesos: is not supported yet: Mesos framework and task selectors (discovery reads Marathon only)",
		`haproxy.backends[1].protocol: "HTTPS" is not supported yet: HTTPS backends (TLS to the servers)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Unsupported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if w := mustParse(t, poolJSON(t)).Unsupported(); len(w) != 0 {
		t.Errorf("base pool has warnings: %v", w)
	}
}

// Every JSON example in docs/config.md parses; examples marked invalid in
// the text are followed by the error they produce.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```")
	n := 0
	for i := 1; i < len(blocks); i += 2 {
		lang, body, _ := strings.Cut(blocks[i], "\n")
		if lang != "json" {
			continue
		}
		n++
		p, err := Parse([]byte(body))
		if err != nil {
			t.Errorf("docs/config.md JSON example %d does not parse: %v\n%s", n, err, body)
			continue
		}
		if w := p.Unsupported(); len(w) > 0 {
			t.Errorf("docs/config.md JSON example %d uses unsupported features: %v", n, Errors(w))
		}
	}
	if n == 0 {
		t.Errorf("no JSON examples in docs/config.md")
	}
}

func TestNestingLimit(t *testing.T) {
	in := `{"name": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	got := parseErrors(t, []byte(in))
	if len(got) != 1 || !strings.HasSuffix(got[0], "nested more than 64 levels deep") {
		t.Errorf("errors = %q", got)
	}
	// 64 levels is still fine for the reader; then name has the wrong type.
	in = `{"name": ` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`
	if got := parseErrors(t, []byte(in)); len(got) != 1 || got[0] != `name: "[...]" is an array, want a string` {
		t.Errorf("errors = %q", got)
	}
}
