package discovery

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// fixturesDir is marathontest.FixturesDir for tests.
func fixturesDir(tb testing.TB) string {
	tb.Helper()
	d, err := marathontest.FixturesDir()
	if err != nil {
		tb.Fatal(err)
	}
	return d
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
