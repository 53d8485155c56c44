package discovery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// fixturesDir finds shared/fixtures/marathon: $EDGEPROXY_SHARED/fixtures/
// marathon, else the first shared/ found walking up from the package (the
// repository clone has shared/ beside it).
func fixturesDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("EDGEPROXY_SHARED"); d != "" {
		return filepath.Join(d, "fixtures", "marathon")
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "fixtures", "marathon")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("shared/fixtures/marathon not found above the package; set EDGEPROXY_SHARED")
		}
		dir = parent
	}
}

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureApps decodes a fixture that holds apps, failing on any skip.
func fixtureApps(tb testing.TB, name string) []App {
	tb.Helper()
	apps, err := DecodeApps(readFixture(tb, name), func(f string, a ...any) { tb.Fatalf("decode %s: "+f, append([]any{name}, a...)...) })
	if err != nil {
		tb.Fatalf("decode %s: %v", name, err)
	}
	return apps
}

// fixtureTasks decodes a fixture that holds {"tasks": [...]} or {"task": {...}}.
func fixtureTasks(tb testing.TB, name string) []Task {
	tb.Helper()
	var v struct {
		Tasks []Task `json:"tasks"`
		Task  *Task  `json:"task"`
	}
	if err := json.Unmarshal(readFixture(tb, name), &v); err != nil {
		tb.Fatalf("decode %s: %v", name, err)
	}
	if v.Task != nil {
		v.Tasks = append(v.Tasks, *v.Task)
	}
	return v.Tasks
}

// holdsTasks reports whether a fixture's JSON carries task objects.
func holdsTasks(data []byte) bool {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(x any) bool {
		switch x := x.(type) {
		case map[string]any:
			if ts, ok := x["tasks"].([]any); ok && len(ts) > 0 {
				return true
			}
			if _, ok := x["task"].(map[string]any); ok {
				return true
			}
			for _, v := range x {
				if walk(v) {
					return true
				}
			}
		case []any:
			for _, v := range x {
				if walk(v) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}
