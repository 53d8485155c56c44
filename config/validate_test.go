package config

import (
	"slices"
	"strings"
	"testing"
)

const (
	fe0 = "haproxy.frontends[0]"
	be0 = "haproxy.backends[0]"
	sv0 = "haproxy.backends[0].services[0]"
)

var svc = map[string]any{"marathon": map[string]any{"serviceID": "/x"}, "endpoint": map[string]any{"portName": "web"}}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		pairs []any
		want  []string // every problem, in order; nil = valid
	}{
		// pool
		{"minimal base is valid", nil, nil},
		{"apiVersion missing means V2", []any{"apiVersion", del{}}, nil},
		{"apiVersion unknown", []any{"apiVersion", "V3"}, []string{`apiVersion: "V3" is not a supported apiVersion (want "V2")`}},
		{"name required", []any{"name", del{}}, []string{`name: is required`}},
		{"name upper case", []any{"name", "Test"}, []string{`name: "Test" must match ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ (lower-case letters, digits and inner dashes)`}},
		{"name trailing dash", []any{"name", "test-"}, []string{`name: "test-" must match ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ (lower-case letters, digits and inner dashes)`}},
		{"name with dashes", []any{"name", "a-b-1"}, nil},
		{"namespace custom", []any{"namespace", "my/pools"}, nil},
		{"namespace empty is allowed", []any{"namespace", ""}, nil},
		{"namespace bad segment", []any{"namespace", "my/Pools"}, []string{`namespace: "my/Pools" has an invalid segment "Pools": each must match ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`}},
		{"namespace leading slash", []any{"namespace", "/pools"}, []string{`namespace: "/pools" must match ^[a-z0-9](.*[a-z0-9])?$`}},
		{"negative cpus", []any{"cpus", -1}, []string{`cpus: "-1" must not be negative`}},
		{"type enum", []any{"type", "dynamic"}, []string{`type: "dynamic" is not one of static, template-static, template-dynamic`}},
		{"type static", []any{"type", "static"}, nil},
		{"pool health-check timeout minimum", []any{"poolHealthcheckTimeout", 1}, []string{`poolHealthcheckTimeout: "1" must be at least 2`}},
		{"pool health-check interval minimum", []any{"poolHealthcheckInterval", 0}, []string{`poolHealthcheckInterval: "0" must be at least 1`}},
		{"ports in range and unique", []any{"ports", []int{80, 9090, 80, -1}}, []string{`ports[2]: "80" is listed twice`, `ports[3]: "-1" is out of range 0..65535`}},
		{"secrets ok", []any{"secrets", []any{map[string]any{"secret": "a", "file": "f_1-x"}}}, nil},
		{"secret fields required", []any{"secrets", []any{map[string]any{}}}, []string{`secrets[0].secret: is required`, `secrets[0].file: is required`}},
		{"secret file regex", []any{"secrets[0]", map[string]any{"secret": "a", "file": "a/b"}}, []string{`secrets[0].file: "a/b" must match ^[a-zA-Z0-9][a-zA-Z0-9_-]*$ (a plain file name)`}},
		{"secret duplicates", []any{"secrets", []any{map[string]any{"secret": "a", "file": "f"}, map[string]any{"secret": "a", "file": "f"}}},
			// encoding/json writes the keys sorted, so "file" comes first.
			[]string{`secrets[1].file: "f" is listed twice`, `secrets[1].secret: "a" is listed twice`}},
		{"virtual network name", []any{"virtualNetworks", []any{map[string]any{"name": "dcos"}, map[string]any{"name": "dcos"}, map[string]any{}}},
			[]string{`virtualNetworks[1].name: "dcos" is listed twice`, `virtualNetworks[2].name: is required`}},

		// stats
		{"stats dynamic port", []any{"haproxy.stats.bindPort", 0}, nil},
		{"stats port range", []any{"haproxy.stats.bindPort", 65536}, []string{`haproxy.stats.bindPort: "65536" is out of range 0..65535 (0 picks a dynamic port from the environment)`}},
		{"stats port clash", []any{"haproxy.stats.bindPort", 80}, []string{fe0 + `.bindPort: "80" is already used by haproxy.stats`}},

		// frontends
		{"bindPort required", []any{fe0 + ".bindPort", del{}}, []string{fe0 + `.bindPort: is required (0 picks a dynamic port from the environment)`}},
		{"bindPort -1 is unset", []any{fe0 + ".bindPort", -1}, []string{fe0 + `.bindPort: is required (0 picks a dynamic port from the environment)`}},
		{"bindPort range", []any{fe0 + ".bindPort", 70000}, []string{fe0 + `.bindPort: "70000" is out of range 0..65535`}},
		{"bindPort dynamic twice", []any{fe0 + ".bindPort", 0, "haproxy.stats.bindPort", 0, "haproxy.frontends[1]", map[string]any{"bindPort": 0, "name": "b", "protocol": "HTTP", "linkBackend": map[string]any{}}}, nil},
		{"bindPort repeated", []any{"haproxy.frontends[1]", map[string]any{"bindPort": 80, "bindAddress": "127.0.0.1", "protocol": "HTTP"}},
			[]string{`haproxy.frontends[1].bindPort: "80" is already used by haproxy.frontends[0]`}},
		{"bindAddress bad chars", []any{fe0 + ".bindAddress", "[::]"}, []string{fe0 + `.bindAddress: "[::]" must not contain '[' (Edge-LB derives frontend names from it)`}},
		{"frontend names unique after defaults", []any{"haproxy.frontends[1]", map[string]any{"name": "frontend_0.0.0.0_80", "bindPort": 81, "protocol": "HTTP"}},
			[]string{`haproxy.frontends[1].name: "frontend_0.0.0.0_80" is already the name of haproxy.frontends[0]`}},
		{"protocol required", []any{fe0 + ".protocol", del{}}, []string{fe0 + `.protocol: is required (one of HTTP, HTTPS, TCP, TLS)`}},
		{"protocol enum", []any{fe0 + ".protocol", "HTTPX"}, []string{fe0 + `.protocol: "HTTPX" is not one of HTTP, HTTPS, TCP, TLS`}},
		{"protocol is case-sensitive", []any{fe0 + ".protocol", "http"}, []string{fe0 + `.protocol: "http" is not one of HTTP, HTTPS, TCP, TLS`}},
		{"HTTPS needs certificates", []any{fe0 + ".protocol", "HTTPS"}, []string{fe0 + `.certificates: must not be empty for protocol HTTPS`}},
		{"TLS needs certificates", []any{fe0 + ".protocol", "TLS", be0 + ".protocol", "TCP"}, []string{fe0 + `.certificates: must not be empty for protocol TLS`}},
		{"certificate forms", []any{fe0 + ".protocol", "HTTPS", fe0 + ".certificates", []string{"$AUTOCERT", "$SECRETS/a", "$ENVFILE/ELB_FILE_X", "$SECRETS/../x", "$AUTOCERT/x"}},
			[]string{fe0 + `.certificates[3]: "$SECRETS/../x" must be $AUTOCERT, $SECRETS/<file> or $ENVFILE/<file>`, fe0 + `.certificates[4]: "$AUTOCERT/x" must be $AUTOCERT, $SECRETS/<file> or $ENVFILE/<file>`}},
		{"certificates ignored for HTTP", []any{fe0 + ".certificates", []string{"whatever"}}, nil},
		{"redirectToHttps on HTTP", []any{fe0 + ".redirectToHttps", map[string]any{"except": []any{map[string]any{"host": "a.com"}, map[string]any{"pathBeg": "/x"}}}}, nil},
		{"redirectToHttps on HTTPS", []any{fe0 + ".protocol", "HTTPS", fe0 + ".certificates", []string{"$AUTOCERT"}, fe0 + ".redirectToHttps", map[string]any{}},
			[]string{fe0 + `.redirectToHttps: is only allowed with protocol HTTP, not HTTPS`}},
		{"redirect except needs a condition", []any{fe0 + ".redirectToHttps.except", []any{map[string]any{}}}, []string{fe0 + `.redirectToHttps.except[0]: needs host or pathBeg`}},
		{"redirect except host lowercase", []any{fe0 + ".redirectToHttps.except", []any{map[string]any{"host": "A.com"}}}, []string{fe0 + `.redirectToHttps.except[0].host: "A.com" must be all lowercase`}},
		{"defaultBackend must exist", []any{fe0 + ".linkBackend.defaultBackend", "nope"},
			[]string{be0 + `.name: "be" is not used by any frontend (Edge-LB requires every backend to be linked)`, fe0 + `.linkBackend.defaultBackend: "nope" is not the name of any backend`}},
		{"frontend without any backend", []any{fe0 + ".linkBackend", map[string]any{}}, []string{be0 + `.name: "be" is not used by any frontend (Edge-LB requires every backend to be linked)`}},
		{"map entry", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "hostEq": "a.example.com", "pathBeg": "/a"}}}, nil},
		{"map backend required", []any{fe0 + ".linkBackend.map", []any{map[string]any{"hostEq": "a"}}}, []string{fe0 + `.linkBackend.map[0].backend: is required`}},
		{"map backend must exist", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "x", "hostEq": "a"}}}, []string{fe0 + `.linkBackend.map[0].backend: "x" is not the name of any backend`}},
		{"map needs a condition", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be"}}}, []string{fe0 + `.linkBackend.map[0]: needs at least one condition (hostEq, hostReg, pathBeg, pathEnd, pathReg)`}},
		{"hostEq lowercase", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "hostEq": "A.com"}}}, []string{fe0 + `.linkBackend.map[0].hostEq: "A.com" must be all lowercase`}},
		{"hostReg lowercase ignores escapes", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "hostReg": `^\S+\.example\.com$`}}}, nil},
		{"hostReg lowercase", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "hostReg": `^WWW\.`}}}, []string{fe0 + `.linkBackend.map[0].hostReg: "^WWW\\." must be all lowercase`}},
		{"pathReg PCRE backreference", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "pathReg": `^/(a)\1`}}},
			[]string{fe0 + `.linkBackend.map[0].pathReg: "^/(a)\\1" is not a valid regular expression: invalid escape sequence: ` + "`\\1`" + ` (edgeproxy uses Go RE2 syntax, not HAProxy's PCRE: lookaround, backreferences and possessive quantifiers are not available)`}},
		{"pathReg possessive", []any{fe0 + ".linkBackend.map", []any{map[string]any{"backend": "be", "pathReg": `a++`}}},
			[]string{fe0 + `.linkBackend.map[0].pathReg: "a++" is not a valid regular expression: invalid nested repetition operator: ` + "`++`" + ` (edgeproxy uses Go RE2 syntax, not HAProxy's PCRE: lookaround, backreferences and possessive quantifiers are not available)`}},
		{"TLS map hostEq only", []any{fe0 + ".protocol", "TLS", fe0 + ".certificates", []string{"$AUTOCERT"}, be0 + ".protocol", "TLS",
			fe0 + ".linkBackend", map[string]any{"map": []any{map[string]any{"backend": "be", "hostEq": "a.com"}, map[string]any{"backend": "be", "hostReg": "a", "pathEnd": ".x"}}}},
			nil}, // accepted; Unsupported warns that hostReg and pathEnd are ignored
		{"HTTP frontend TCP backend", []any{be0 + ".protocol", "TCP"}, []string{fe0 + `.linkBackend.defaultBackend: "be" has protocol TCP, but frontend protocol HTTP needs an HTTP or HTTPS backend`}},
		{"TCP frontend HTTPS backend", []any{fe0 + ".protocol", "TCP", be0 + ".protocol", "HTTPS"}, nil}, // HAProxy upgrades to HTTP
		{"HTTPS frontend HTTPS backend", []any{fe0 + ".protocol", "HTTPS", fe0 + ".certificates", []string{"$AUTOCERT"}, be0 + ".protocol", "HTTPS"}, nil},
		{"TCP frontend TLS backend", []any{fe0 + ".protocol", "TCP", be0 + ".protocol", "TLS"}, nil},

		// backends
		{"backend name required", []any{be0 + ".name", del{}, fe0 + ".linkBackend", map[string]any{}}, []string{be0 + `.name: is required`}},
		{"backend names unique", []any{"haproxy.backends[1]", map[string]any{"name": "be", "protocol": "HTTP", "services": []any{svc}}},
			[]string{`haproxy.backends[1].name: "be" is already the name of haproxy.backends[0]`}},
		{"backend protocol required", []any{be0 + ".protocol", del{}}, []string{be0 + `.protocol: is required (one of HTTP, HTTPS, TCP, TLS)`}},
		{"services required", []any{be0 + ".services", []any{}}, []string{be0 + `.services: must have at least 1 service`}},
		{"rewrite path endings", []any{be0 + ".rewriteHttp.path", map[string]any{"fromPath": "/a/", "toPath": "/b"}},
			[]string{be0 + `.rewriteHttp.path: fromPath "/a/" and toPath "/b" must both end with "/" or neither`}},
		{"rewrite path to root", []any{be0 + ".rewriteHttp.path", map[string]any{"fromPath": "/nginx", "toPath": "/"}}, nil},
		{"rewrite path to empty", []any{be0 + ".rewriteHttp.path", map[string]any{"fromPath": "/nginx/", "toPath": ""}}, nil},
		{"rewrite path matching endings", []any{be0 + ".rewriteHttp.path", map[string]any{"fromPath": "/a/", "toPath": "/b/"}}, nil},
		{"httpchk and sslHelloChk", []any{be0 + ".customCheck", map[string]any{"httpchk": true, "sslHelloChk": true}},
			[]string{be0 + `.customCheck.sslHelloChk: cannot be combined with httpchk: a backend has one check type`}},
		{"expect without httpchk", []any{be0 + ".miscStrs", []string{"http-check expect status 200"}},
			[]string{be0 + ".miscStrs: has `http-check expect` without an HTTP check (set customCheck.httpchk or `option httpchk`)"}},

		// services
		{"service needs a selector", []any{sv0 + ".marathon", del{}}, []string{sv0 + `: needs marathon.serviceID, marathon.serviceIDPattern or a mesos framework and task selector (or endpoint.type ADDRESS)`}},
		{"marathon pattern", []any{sv0 + ".marathon", map[string]any{"serviceIDPattern": "^/a.*$"}}, nil},
		{"marathon pattern must compile", []any{sv0 + ".marathon", map[string]any{"serviceIDPattern": "(?<=a)b"}},
			[]string{sv0 + `.marathon.serviceIDPattern: "(?<=a)b" is not a valid regular expression: invalid named capture: ` + "`(?<=a)b`" + ` (edgeproxy uses Go RE2 syntax, not HAProxy's PCRE: lookaround, backreferences and possessive quantifiers are not available)`}},
		{"mesos framework and task", []any{sv0 + ".marathon", del{}, sv0 + ".mesos", map[string]any{"frameworkID": "f", "taskIDPattern": "^t"}}, nil},
		{"mesos framework without task", []any{sv0 + ".marathon", del{}, sv0 + ".mesos", map[string]any{"frameworkName": "f"}},
			[]string{sv0 + `.mesos.taskName: is required with a framework selector (taskName, taskNamePattern, taskID or taskIDPattern)`}},
		{"mesos task without framework", []any{sv0 + ".marathon", del{}, sv0 + ".mesos", map[string]any{"taskName": "t"}},
			[]string{sv0 + `.mesos.frameworkName: is required with a task selector (frameworkName, frameworkNamePattern, frameworkID or frameworkIDPattern)`}},
		{"mesos pattern must compile", []any{sv0 + ".mesos", map[string]any{"frameworkName": "f", "taskNamePattern": "[z-a]"}},
			[]string{sv0 + `.mesos.taskNamePattern: "[z-a]" is not a valid regular expression: invalid character class range: ` + "`z-a`"}},
		{"endpoint type enum", []any{sv0 + ".endpoint.type", "VIP"}, []string{sv0 + `.endpoint.type: "VIP" is not one of AUTO_IP, AGENT_IP, CONTAINER_IP, ADDRESS`}},
		{"endpoint needs a port", []any{sv0 + ".endpoint.portName", del{}}, []string{sv0 + `.endpoint: needs portName, port or allPorts: true to pick the task's port`}},
		{"endpoint port override", []any{sv0 + ".endpoint", map[string]any{"port": 8080}}, nil},
		{"endpoint allPorts", []any{sv0 + ".endpoint", map[string]any{"allPorts": true}}, nil},
		{"endpoint port range", []any{sv0 + ".endpoint.port", 0}, []string{sv0 + `.endpoint.port: "0" is out of range 1..65535 (or -1 for the discovered port)`}},
		{"ADDRESS", []any{sv0, map[string]any{"endpoint": map[string]any{"type": "ADDRESS", "address": "10.0.0.1", "port": 80}}}, nil},
		{"ADDRESS needs address and port", []any{sv0, map[string]any{"endpoint": map[string]any{"type": "ADDRESS"}}},
			[]string{sv0 + `.endpoint.address: is required for type ADDRESS`, sv0 + `.endpoint.port: is required for type ADDRESS`}},
		{"address only with ADDRESS", []any{sv0 + ".endpoint.address", "10.0.0.1"}, []string{sv0 + `.endpoint.address: "10.0.0.1" is only allowed with type ADDRESS`}},

		// cloud provider
		{"NLB listener links a frontend", []any{fe0 + ".name", "web", "cloudProvider.aws.elbs", []any{map[string]any{"name": "n", "type": "NLB", "listeners": []any{map[string]any{"port": 80, "linkFrontend": "web"}}}}}, nil},
		{"NLB listener unknown frontend", []any{"cloudProvider.aws.elbs", []any{map[string]any{"listeners": []any{map[string]any{"port": 0, "linkFrontend": "web"}}}}},
			// A missing field sorts at the end of its object.
			[]string{`cloudProvider.aws.elbs[0].listeners[0].linkFrontend: "web" is not the name of any frontend`, `cloudProvider.aws.elbs[0].listeners[0].port: "0" is out of range 1..65535`, `cloudProvider.aws.elbs[0].name: is required`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := poolJSON(t, tt.pairs...)
			if tt.want == nil {
				mustParse(t, data)
				return
			}
			got := parseErrors(t, data)
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Errors come in the order of the document, not in the order of the checks:
// here stats comes first in the input although it is validated after the
// frontends.
func TestErrorsInDocumentOrder(t *testing.T) {
	data := []byte(`{
	  "name": "order",
	  "haproxy": {
	    "stats": {"bindPort": 99999},
	    "backends": [{"name": "be", "protocol": "BAD", "services": [{"marathon": {"serviceID": "/a"}, "endpoint": {"portName": "p"}}]}],
	    "frontends": [{"bindPort": 80, "protocol": "HTTP", "linkBackend": {"defaultBackend": "be"}, "junk": 1}]
	  },
	  "cpus": -2
	}`)
	got := parseErrors(t, data)
	want := []string{
		`haproxy.stats.bindPort: "99999" is out of range 0..65535 (0 picks a dynamic port from the environment)`,
		`haproxy.backends[0].protocol: "BAD" is not one of HTTP, HTTPS, TCP, TLS`,
		`haproxy.frontends[0].junk: unknown field`,
		`cpus: "-2" must not be negative`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
