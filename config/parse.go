package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// Parse decodes, completes and validates one Edge-LB V2 pool.
//
// Decoding is strict: unknown fields, duplicate keys and values of the wrong
// JSON type are errors. A missing apiVersion means V2 (Edge-LB 1.5 and
// later; older releases assumed V1, so send it explicitly to be portable). A
// V1 pool, recognised by apiVersion "V1", a top-level "pools" wrapper or
// backends[].servers, is rejected with one error that says so.
//
// On failure the error is an [Errors] listing every problem in document
// order, and the pool is nil.
func Parse(data []byte) (*Pool, error) {
	root, fe := parseTree(data)
	if fe != nil {
		return nil, Errors{fe}
	}
	if fe := detectV1(root); fe != nil {
		return nil, Errors{fe}
	}
	p := &Pool{}
	d := &decoder{offsets: map[string]span{}}
	d.decode("", root, reflect.ValueOf(p).Elem())
	applyDefaults(p)
	v := &validator{p: p}
	v.pool()

	errs := d.errs
	for _, e := range v.errs {
		if !underTypeError(e.Path, d.typeError) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		sortByDocument(errs, d.offsets)
		return nil, errs
	}
	return p, nil
}

// underTypeError reports whether path is at or below a value that could not
// be decoded: its validation errors would only repeat the decode error.
func underTypeError(path string, bad []string) bool {
	for _, b := range bad {
		if within(path, b) {
			return true
		}
	}
	return false
}

// ParseFile reads and parses the pool in the named file. Parse problems are
// returned as [Errors], unwrapped; the caller names the file.
func ParseFile(path string) (*Pool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pool config: %w", err)
	}
	return Parse(data)
}

// ApplyBindAddress makes every frontend and the stats listener bind to ip
// (for example the agent's address, or 127.0.0.1 in tests). Frontend names
// do not change: Parse derived the default names, frontend_<address>_<port>,
// from the address in the document, so names seen by NLB listeners
// (linkFrontend), stats and metrics stay the same whatever the bind address.
func ApplyBindAddress(p *Pool, ip string) {
	p.Haproxy.Stats.BindAddress = ip
	for i := range p.Haproxy.Frontends {
		p.Haproxy.Frontends[i].BindAddress = ip
	}
}

// redactPrefix marks environment variables whose values are file contents
// (Edge-LB writes ELB_FILE_* to $ENVFILE, typically certificates and keys).
const redactPrefix = "ELB_FILE_"

// MarshalEffective renders the pool with every default filled in, as
// indented JSON with a trailing newline. Fields come in the order of the Go
// types, map keys sorted, so the output is stable. The values of ELB_FILE_*
// environment variables are replaced by "<redacted: N bytes>" because they
// usually hold private keys and the effective config is served by the stats
// listener. Parsing the output again yields the same output.
func (p *Pool) MarshalEffective() ([]byte, error) {
	q := *p
	if len(p.EnvironmentVariables) > 0 {
		q.EnvironmentVariables = make(map[string]string, len(p.EnvironmentVariables))
		for k, val := range p.EnvironmentVariables {
			if strings.HasPrefix(k, redactPrefix) && !strings.HasPrefix(val, "<redacted") {
				val = fmt.Sprintf("<redacted: %d bytes>", len(val))
			}
			q.EnvironmentVariables[k] = val
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&q); err != nil {
		return nil, fmt.Errorf("marshal pool %q: %w", p.Name, err)
	}
	return buf.Bytes(), nil
}
