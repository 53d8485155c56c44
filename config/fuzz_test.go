package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every rejection is a
// non-empty Errors, and that the effective config of an accepted pool is a
// fixed point of Parse. Run: go test ./config -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{
		filepath.Join(fixtureDir, "*.json"),
		filepath.Join(fixtureDir, "v1", "*.json"),
		filepath.Join("testdata", "input", "*.json"),
	} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(basePool))
	f.Add([]byte(`{"name":"a","haproxy":{"frontends":[{"bindPort":0,"protocol":"TCP","linkBackend":{"map":[{"backend":"b","hostEq":"x"}]}}],"backends":[{"name":"b","protocol":"TCP","services":[{"endpoint":{"type":"ADDRESS","address":"a","port":1,"miscStr":"weight 3 inter 1s"}}]}]}}`))
	f.Add([]byte(`{"pools":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":{"a":{"a":[[[[[]]]]]}}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.Error() == "" {
					t.Fatalf("empty error message in %v", errs)
				}
			}
			if p != nil {
				t.Fatalf("pool returned with an error")
			}
			return
		}
		out, err := p.MarshalEffective()
		if err != nil {
			t.Fatalf("MarshalEffective: %v", err)
		}
		p2, err := Parse(out)
		if err != nil {
			t.Fatalf("effective config rejected: %v\n%s", err, out)
		}
		out2, err := p2.MarshalEffective()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("effective config is not a fixed point:\n%s\n---\n%s", out, out2)
		}
		p.Unsupported()
		for i := range p.Haproxy.Frontends {
			p.Haproxy.Frontends[i].Options()
		}
		for i := range p.Haproxy.Backends {
			b := &p.Haproxy.Backends[i]
			b.Options()
			for j := range b.Services {
				o := b.Services[j].Server(b)
				if o.Check.Inter <= 0 || o.Check.Timeout <= 0 || o.Check.Rise < 1 || o.Check.Fall < 1 || o.Weight < 0 || o.Weight > 256 {
					t.Fatalf("server options out of range: %+v", o)
				}
			}
		}
	})
}

// FuzzRawHAProxy feeds the raw-string parsers directly.
func FuzzRawHAProxy(f *testing.F) {
	for _, s := range []string{
		"weight 20", "inter 5s fall 3 rise 2", "timeout server 30s", "option httpchk GET /x HTTP/1.1\\r\\nHost:\\ a",
		"http-check expect status 200", "balance random(2)", "cookie A insert indirect", "accept-proxy", "maxconn 10", "# c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		so := defaultServerOptions()
		_ = parseServerOptions(s, &so)
		var bo backendOptions
		_ = parseBackendLine(s, &bo)
		var fo FrontendOptions
		_ = parseFrontendLine(s, &fo)
		_ = parseBindModifier(s, &fo)
		_, _ = parseSticky(s)
		_, _ = parseHTTPChkString(s)
		_, _, _ = parseBalance(s)
		if d, err := parseTime(s); err == nil && (d < 0 || d > maxTime) {
			t.Fatalf("parseTime(%q) = %v", s, d)
		}
	})
}
