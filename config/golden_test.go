package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixtureDir holds the Edge-LB documentation examples shared by the project
// (/work/shared next to the repository).
var fixtureDir = filepath.Join("..", "..", "shared", "fixtures", "edgelb")

// goldenSet is a directory of pool files and the directory of their golden
// results: <name>.json (effective config) and <name>.warn (Unsupported) when
// the pool parses, <name>.err when it does not.
type goldenSet struct {
	in, out string
	// mustFail lists inputs that must be rejected, with a text the error
	// must contain; allFail says every input must be rejected.
	mustFail map[string]string
	allFail  string
}

var goldenSets = []goldenSet{
	{
		in:  fixtureDir,
		out: filepath.Join("testdata", "golden"),
		mustFail: map[string]string{
			// Documented as invalid: V1 `framework` inside V2 services, and a
			// frontend without protocol.
			"test-https-pool__usage.json":   "haproxy.frontends[0].protocol: is required",
			"test-https-pool__usage-2.json": "haproxy.backends[0].services[0].framework: unknown field",
			// A TLS frontend routing to HTTP backends with hostReg: HAProxy
			// would refuse the mode mix.
		},
	},
	{in: filepath.Join(fixtureDir, "v1"), out: filepath.Join("testdata", "golden", "v1"), allFail: "V1 is deprecated since Edge-LB 1.5"},
	{in: filepath.Join(fixtureDir, "v1", "repo-dcos-edge-lb-vendored"), out: filepath.Join("testdata", "golden", "v1", "repo-dcos-edge-lb-vendored"), allFail: "V1 is deprecated since Edge-LB 1.5"},
	{in: filepath.Join("testdata", "input"), out: filepath.Join("testdata", "golden", "input")},
}

func TestGolden(t *testing.T) {
	for _, set := range goldenSets {
		inputs, err := filepath.Glob(filepath.Join(set.in, "*.json"))
		if err != nil || len(inputs) == 0 {
			t.Fatalf("no pool files in %s (err %v): the shared fixtures must be next to the repository", set.in, err)
		}
		want := map[string]bool{}
		for _, in := range inputs {
			base := filepath.Base(in)
			if base == "INDEX.json" {
				continue
			}
			name := strings.TrimSuffix(base, ".json")
			t.Run(filepath.Join(filepath.Base(set.in), name), func(t *testing.T) {
				files := goldenOutputs(t, in)
				mustText, mustFail := set.mustFail[base]
				if set.allFail != "" {
					mustText, mustFail = set.allFail, true
				}
				errText, failed := files[".err"]
				if mustFail && (!failed || !strings.Contains(errText, mustText)) {
					t.Errorf("%s must be rejected with %q; got %q", base, mustText, errText)
				}
				for ext, got := range files {
					want[name+ext] = true
					checkGolden(t, filepath.Join(set.out, name+ext), got)
				}
			})
		}
		checkStale(t, set.out, want)
	}
}

// goldenOutputs parses one pool file and returns the golden files it should
// have, keyed by extension.
func goldenOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse error is %T, want non-empty Errors", err)
		}
		return map[string]string{".err": err.Error() + "\n"}
	}
	eff, err := p.MarshalEffective()
	if err != nil {
		t.Fatal(err)
	}
	// The effective config is a fixed point of Parse.
	p2, err := Parse(eff)
	if err != nil {
		t.Fatalf("effective config does not parse: %v", err)
	}
	eff2, _ := p2.MarshalEffective()
	if !bytes.Equal(eff, eff2) {
		t.Errorf("effective config changes when parsed again:\n%s", eff2)
	}
	out := map[string]string{".json": string(eff)}
	if warns := p.Unsupported(); len(warns) > 0 {
		out[".warn"] = Errors(warns).Error() + "\n"
	}
	return out
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -run TestGolden -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// checkStale fails on golden files that no input produces any more, so an
// input that starts or stops parsing cannot leave a misleading file behind.
func checkStale(t *testing.T, dir string, want map[string]bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var stale []string
	for _, e := range entries {
		if e.IsDir() || want[e.Name()] {
			continue
		}
		if *update {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		stale = append(stale, e.Name())
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("stale golden files in %s: %v (run with -update)", dir, stale)
	}
}
