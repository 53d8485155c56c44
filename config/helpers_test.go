package config

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// basePool is a small valid pool that the table tests modify.
const basePool = `{
  "apiVersion": "V2",
  "name": "test",
  "haproxy": {
    "frontends": [{"bindPort": 80, "protocol": "HTTP", "linkBackend": {"defaultBackend": "be"}}],
    "backends": [{
      "name": "be",
      "protocol": "HTTP",
      "services": [{"marathon": {"serviceID": "/app"}, "endpoint": {"portName": "web"}}]
    }]
  }
}`

// del as a value removes the field.
type del struct{}

// poolJSON returns basePool with each path set to its value (pairs of path,
// value). Paths use the syntax of FieldError.Path; missing objects and
// array elements are created.
func poolJSON(t testing.TB, pairs ...any) []byte {
	t.Helper()
	var root any
	if err := json.Unmarshal([]byte(basePool), &root); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pairs); i += 2 {
		root = setPath(t, root, splitPath(pairs[i].(string)), pairs[i+1])
	}
	out, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func splitPath(p string) []any {
	var segs []any
	for _, part := range strings.Split(p, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			segs = append(segs, name)
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			n, _ := strconv.Atoi(num)
			segs = append(segs, n)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

func setPath(t testing.TB, node any, segs []any, val any) any {
	if len(segs) == 0 {
		return val
	}
	switch s := segs[0].(type) {
	case string:
		m, ok := node.(map[string]any)
		if !ok {
			m = map[string]any{}
		}
		if _, isDel := val.(del); isDel && len(segs) == 1 {
			delete(m, s)
			return m
		}
		m[s] = setPath(t, m[s], segs[1:], val)
		return m
	case int:
		a, _ := node.([]any)
		for len(a) <= s {
			a = append(a, nil)
		}
		a[s] = setPath(t, a[s], segs[1:], val)
		return a
	}
	t.Fatalf("bad path segment %v", segs[0])
	return nil
}

// mustParse parses data and fails the test on any error.
func mustParse(t testing.TB, data []byte) *Pool {
	t.Helper()
	p, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v\ninput: %s", err, data)
	}
	return p
}

// parseErrors parses data, which must be rejected, and returns the problems
// as strings.
func parseErrors(t testing.TB, data []byte) []string {
	t.Helper()
	p, err := Parse(data)
	if err == nil {
		t.Fatalf("Parse accepted %s", data)
	}
	if p != nil {
		t.Errorf("Parse returned a pool with an error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors", err)
	}
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}
