package marathontest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
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

// shape maps a JSON path (keys joined by ".", array elements as "[]") to the
// JSON kinds seen there.
type shape map[string]map[string]bool

// opaque keys hold user data (label keys, env names): their content is not
// part of the wire format.
var opaque = map[string]bool{"labels": true, "env": true, "secrets": true, "parameters": true, "volumes": true}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// add records v under path, not descending into the keys in stop.
func (s shape) add(v any, path string, stop map[string]bool) {
	if s[path] == nil {
		s[path] = map[string]bool{}
	}
	s[path][kind(v)] = true
	last := path[strings.LastIndex(path, ".")+1:]
	if opaque[last] {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if stop[k] {
				continue
			}
			s.add(c, path+"."+k, stop)
		}
	case []any:
		for _, c := range v {
			s.add(c, path+"[]", stop)
		}
	}
}

// check reports the paths of got absent from (or of another kind than) want.
func (s shape) check(got shape) []string {
	var bad []string
	for p, kinds := range got {
		w, ok := s[p]
		if !ok {
			bad = append(bad, p+" (unknown key)")
			continue
		}
		for k := range kinds {
			onlyNull := len(w) == 1 && w["null"]
			if k != "null" && !w[k] && !onlyNull {
				bad = append(bad, fmt.Sprintf("%s is %s, real: %v", p, k, sortedKeys(w)))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func topKeys(v any) map[string]bool {
	out := map[string]bool{}
	if m, ok := v.(map[string]any); ok {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

// realShapes reads every app, task and event in the fixtures.
type realShapes struct {
	app, task shape
	events    map[string]shape
	// modernApp and modernTask: the top-level keys present in EVERY app and
	// task captured from Marathon 1.5+ clusters.
	modernApp, modernTask map[string]bool
}

var modernFixtures = []string{
	"mesosphere__marathon-lb__tests__marathon15_apps.json",
	"mesosphere__marathon-lb__tests__zdd_app_blue_marathon1.5.json",
	"mesosphere__dcos-docs-site__pages__mesosphere__dcos__2.2__cli__command-reference__dcos-marathon__dcos-marathon-app-show__index.md--example.json",
}

func loadRealShapes(t *testing.T) realShapes {
	t.Helper()
	dir := fixturesDir(t)
	rs := realShapes{app: shape{}, task: shape{}, events: map[string]shape{}}
	noTasks := map[string]bool{"tasks": true}
	addApp := func(a any, modern bool) {
		rs.app.add(a, "", noTasks)
		m, _ := a.(map[string]any)
		tasks, _ := m["tasks"].([]any)
		if modern {
			rs.modernApp = intersect(rs.modernApp, topKeys(a))
		}
		for _, t := range tasks {
			rs.task.add(t, "", nil)
			if modern {
				rs.modernTask = intersect(rs.modernTask, topKeys(t))
			}
		}
	}
	addEvent := func(ev map[string]any) {
		typ := shapeKey(ev["eventType"])
		if typ == "" {
			return
		}
		if rs.events[typ] == nil {
			rs.events[typ] = shape{}
		}
		rs.events[typ].add(ev, "", map[string]bool{"appDefinition": true})
		if def, ok := ev["appDefinition"]; ok {
			addApp(def, false)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		modern := slices.Contains(modernFixtures, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".json"):
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			switch {
			case v["apps"] != nil:
				for _, a := range v["apps"].([]any) {
					addApp(a, modern)
				}
			case v["app"] != nil:
				addApp(v["app"], modern)
			case v["tasks"] != nil:
				for _, t := range v["tasks"].([]any) {
					rs.task.add(t, "", nil)
				}
			case v["task"] != nil:
				rs.task.add(v["task"], "", nil)
			case v["eventType"] != nil:
				addEvent(v)
			case v["id"] != nil && v["spec"] == nil:
				addApp(v, modern)
			}
		case strings.HasSuffix(e.Name(), ".txt"):
			for _, line := range strings.Split(string(raw), "\n") {
				if d, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
					var ev map[string]any
					if json.Unmarshal([]byte(d), &ev) == nil {
						addEvent(ev)
					}
				}
			}
		case strings.HasSuffix(e.Name(), "event-bus.md"):
			for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(raw), -1) {
				var ev map[string]any
				if json.Unmarshal([]byte(m[1]), &ev) == nil {
					addEvent(ev)
				}
			}
		}
	}
	if len(rs.events) < 15 || len(rs.modernApp) < 20 || len(rs.modernTask) < 8 {
		t.Fatalf("fixtures too thin: %d event types, %d modern app keys, %d modern task keys", len(rs.events), len(rs.modernApp), len(rs.modernTask))
	}
	return rs
}

// shapeKey pools the deployment events that carry a plan: Marathon writes
// the same DeploymentPlan JSON into each of them.
func shapeKey(eventType any) string {
	t, _ := eventType.(string)
	switch t {
	case "deployment_info", "deployment_step_success", "deployment_step_failure":
		return "deployment plan events"
	}
	return t
}

func intersect(a, b map[string]bool) map[string]bool {
	if a == nil {
		return b
	}
	out := map[string]bool{}
	for k := range a {
		if b[k] {
			out[k] = true
		}
	}
	return out
}

// shapeScenario runs a fake through every kind of app and change, and
// returns the apps and tasks it serves and the events it streamed.
func shapeScenario(t *testing.T) (apps, tasks []any, events []discovery.Event) {
	srv := marathontest.New(marathontest.Options{KillDelay: 200 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	c, err := discovery.NewClient(discovery.ClientOptions{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	es, err := c.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()

	seed, err := os.ReadFile("testdata/customer.json")
	if err != nil {
		t.Fatal(err)
	}
	defs := [][]byte{seed}
	for _, name := range []string{
		"mesosphere__marathon-lb__ci__backends__ucr_host.json", "mesosphere__marathon-lb__ci__backends__docker_host.json",
		"mesosphere__marathon-lb__ci__backends__docker_ippc.json", "mesosphere__marathon-lb__ci__backends__ucr_ippc.json",
		"mesosphere__marathon-lb__tests__1-nginx-marathon1.5.json",
		"allegro__marathon-consul@0c945a5__apps__testdata__port-names.json",
	} {
		b, err := os.ReadFile(filepath.Join(fixturesDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		var wrapped struct{ App json.RawMessage }
		if json.Unmarshal(b, &wrapped) == nil && wrapped.App != nil {
			b = wrapped.App
		}
		defs = append(defs, b)
	}
	for _, d := range defs {
		def, err := marathontest.ParseAppDefinition(d)
		if err != nil {
			t.Fatal(err)
		}
		one := 1
		def.Instances = &one
		if err := srv.AddApp(def, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Scale("/customer", 2); err != nil {
		t.Fatal(err)
	}
	nginx := srv.Tasks("/nginx")[0].ID
	if err := srv.SetTaskHealth(nginx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Scale("/customer", 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.RemoveApp("/nginx-ucr-host"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "app removal", func() bool { return srv.Tasks("/nginx-ucr-host") == nil })
	if _, err := srv.Scale("/customer", 0); err != nil { // a deployment in progress, a TASK_KILLING task
		t.Fatal(err)
	}

	getJSON(t, srv.URL()+"/v2/apps?embed=apps.tasks&embed=apps.readiness", &struct{ Apps *[]any }{&apps})
	var one struct{ App any }
	getJSON(t, srv.URL()+"/v2/apps/customer", &one)
	apps = append(apps, one.App)
	getJSON(t, srv.URL()+"/v2/tasks", &struct{ Tasks *[]any }{&tasks})
	for _, a := range apps {
		ts, _ := a.(map[string]any)["tasks"].([]any)
		tasks = append(tasks, ts...)
	}
	srv.Emit("deployment_failed", map[string]any{"id": "x"}) // end marker
	for {
		ev, err := es.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
		if ev.Type == "deployment_failed" {
			break
		}
	}
	return apps, tasks, events
}

// TestShapesMatchFixtures decodes the real captures and the fake's answers
// with the same decoder and compares their keys and kinds: the fake may
// emit only keys real Marathon emits, with the same JSON kinds, and must
// emit every top-level key that every 1.5+ capture has.
func TestShapesMatchFixtures(t *testing.T) {
	real := loadRealShapes(t)
	apps, tasks, events := shapeScenario(t)

	appShape, taskShape := shape{}, shape{}
	for _, a := range apps {
		appShape.add(a, "", map[string]bool{"tasks": true})
		for k := range real.modernApp {
			// container is optional (App.container?: in app.raml): a
			// command app has none; every 1.5+ capture happens to be Docker.
			if !topKeys(a)[k] && k != "container" {
				t.Errorf("app %v lacks %q, present in every 1.5+ capture", a.(map[string]any)["id"], k)
			}
		}
	}
	for _, tk := range tasks {
		taskShape.add(tk, "", nil)
		for k := range real.modernTask {
			if !topKeys(tk)[k] {
				t.Errorf("task %v lacks %q, present in every 1.5+ capture", tk.(map[string]any)["id"], k)
			}
		}
	}
	for _, p := range real.app.check(appShape) {
		t.Errorf("app: %s", p)
	}
	for _, p := range real.task.check(taskShape) {
		t.Errorf("task: %s", p)
	}
	// Every mode's distinguishing paths are there.
	for _, p := range []string{".networks[].mode", ".networks[].name", ".container.portMappings[].hostPort", ".container.portMappings[].name",
		".portDefinitions[].name", ".healthChecks[].protocol", ".deployments[].id", ".readinessCheckResults"} {
		if appShape[p] == nil {
			t.Errorf("fake never emitted app path %s", p)
		}
	}
	for _, p := range []string{".healthCheckResults[].alive", ".healthCheckResults[].instanceId", ".ipAddresses[].ipAddress", ".startedAt", ".state"} {
		if taskShape[p] == nil {
			t.Errorf("fake never emitted task path %s", p)
		}
	}

	seen := map[string]int{}
	for _, ev := range events {
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatalf("%s: %v", ev.Type, err)
		}
		if m["eventType"] != ev.Type {
			t.Errorf("event field %q but eventType %v", ev.Type, m["eventType"])
		}
		seen[ev.Type]++
		rs, ok := real.events[shapeKey(ev.Type)]
		if !ok {
			t.Errorf("event type %q not in the fixtures", ev.Type)
			continue
		}
		got := shape{}
		got.add(m, "", map[string]bool{"appDefinition": true})
		for _, p := range rs.check(got) {
			t.Errorf("event %s: %s", ev.Type, p)
		}
		for p := range rs {
			if strings.Count(p, ".") == 1 && !strings.Contains(p, "[") && got[p] == nil && ev.Type != "event_stream_attached" {
				t.Errorf("event %s lacks %s", ev.Type, p)
			}
		}
		if def, ok := m["appDefinition"]; ok {
			ds := shape{}
			ds.add(def, "", nil)
			for _, p := range real.app.check(ds) {
				t.Errorf("event %s appDefinition: %s", ev.Type, p)
			}
		}
	}
	for _, typ := range []string{"event_stream_attached", "status_update_event", "instance_changed_event", "health_status_changed_event",
		"instance_health_changed_event", "api_post_event", "deployment_info", "deployment_step_success", "deployment_success", "app_terminated_event"} {
		if seen[typ] == 0 {
			t.Errorf("scenario produced no %s", typ)
		}
	}

	// The discovery decoder reads all of it without skipping anything.
	body, _ := json.Marshal(map[string]any{"apps": apps})
	if _, err := discovery.DecodeApps(body, func(f string, a ...any) { t.Errorf("decode: "+f, a...) }); err != nil {
		t.Fatal(err)
	}
}
