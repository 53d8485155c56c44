package discovery

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Fixture file names (shared/fixtures/marathon).
const (
	fxAllegroApp   = "allegro__marathon-consul__apps__testdata__app.json"
	fxAllegroTasks = "allegro__marathon-consul@c1de609__apps__testdata__tasks.json"
	fxBroken       = "gambol99__go-marathon__tests__rest-api__methods.yml--GET__v2__apps__fake-app-broken.json"
	fxFakeApp      = "gambol99__go-marathon__tests__rest-api__methods.yml--GET__v2__apps__fake-app.json"
	fxNoHCResults  = "gambol99__go-marathon__tests__rest-api__methods.yml--GET__v2__apps__no-health-check-results-app.json"
	fxGMApps       = "gambol99__go-marathon__tests__rest-api__methods.yml--GET__v2__apps.json"
	fxGMTasks      = "gambol99__go-marathon__tests__rest-api__methods.yml--GET__v2__tasks.json"
	fxDCOSAppShow  = "mesosphere__dcos-docs-site__pages__mesosphere__dcos__2.2__cli__command-reference__dcos-marathon__dcos-marathon-app-show__index.md--example.json"
	fxM15          = "mesosphere__marathon-lb__tests__marathon15_apps.json"
	fxZDDBlue15    = "mesosphere__marathon-lb__tests__zdd_app_blue_marathon1.5.json"
	fxZDD          = "mesosphere__marathon-lb__tests__zdd_apps.json"
	fxAppTask      = "mesosphere__marathon__docs__docs__rest-api__public__api__v2__examples__app_task.json"
	fxAppTasks     = "mesosphere__marathon__docs__docs__rest-api__public__api__v2__examples__app_tasks.json"
	fxTasks        = "mesosphere__marathon__docs__docs__rest-api__public__api__v2__examples__tasks.json"
	fxExampleApp   = "mesosphere__marathon__docs__docs__rest-api__public__api__v2__examples__app.json"
	fxJuniperApps  = "Juniper__contrail-specs@09b4a07__5.1__contrail-mesosphere-integration.md--v2-apps-output.json"
	fxDockerIPPC   = "mesosphere__marathon-lb__ci__backends__docker_ippc.json"
	fxUCRIPPC      = "mesosphere__marathon-lb__ci__backends__ucr_ippc.json"
	fxDockerHost   = "mesosphere__marathon-lb__ci__backends__docker_host.json"
)

// w is the expected (address, port, healthy) of one task, written literally.
type w struct {
	addr    string
	port    int
	healthy bool
	task    string
}

func project(eps []Endpoint) []w {
	out := make([]w, 0, len(eps))
	for _, e := range eps {
		out = append(out, w{e.Address, e.Port, e.Healthy, e.TaskID})
	}
	return out
}

func intp(i int) *int { return &i }

// withTasks attaches decoded fixture tasks to an app definition written in
// the test, for fixtures that hold tasks without their app.
func withTasks(app App, tasks []Task) []App {
	for _, t := range tasks {
		if absID(t.AppID) == app.ID || t.AppID == "" {
			app.Tasks = append(app.Tasks, t)
		}
	}
	return []App{app}
}

var oneHTTPCheck = []HealthCheck{{Protocol: "HTTP", PortIndex: intp(0)}}

func TestResolveFixtures(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		apps    func(t *testing.T) []App // default: the fixture's apps
		sel     Selector
		want    []w
		logs    []string // substrings of expected skip lines
	}{
		{
			name: "legacy host ports, unnamed, first port", fixture: fxAllegroApp,
			sel: Selector{ServiceID: "/myapp"},
			want: []w{
				{"10.141.141.10", 31307, true, "myapp.c8b449f0-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31678, true, "myapp.cc49ccc1-9812-11e5-a06e-56847afe9799"},
			},
		},
		{
			name: "legacy host ports, all ports", fixture: fxAllegroApp,
			sel: Selector{ServiceID: "myapp", AllPorts: true},
			want: []w{
				{"10.141.141.10", 31307, true, "myapp.c8b449f0-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31308, true, "myapp.c8b449f0-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31309, true, "myapp.c8b449f0-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31310, true, "myapp.c8b449f0-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31678, true, "myapp.cc49ccc1-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31679, true, "myapp.cc49ccc1-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31680, true, "myapp.cc49ccc1-9812-11e5-a06e-56847afe9799"},
				{"10.141.141.10", 31681, true, "myapp.cc49ccc1-9812-11e5-a06e-56847afe9799"},
			},
		},
		{
			name: "unknown port name", fixture: fxAllegroApp,
			sel:  Selector{ServiceID: "/myapp", PortName: "http"},
			want: []w{}, logs: []string{`app "/myapp": no port named "http"`},
		},
		{
			name: "bridge, one failing health check", fixture: fxBroken,
			sel: Selector{ServiceID: "/fake-app-broken"},
			want: []w{
				{"10.141.141.10", 31234, false, "toggle.7c99814d-3ad4-11e4-a400-56847afe9799"},
				{"10.141.141.10", 31045, true, "toggle.802df2ae-3ad4-11e4-a400-56847afe9799"},
			},
		},
		{
			name: "bridge, all alive", fixture: fxFakeApp,
			sel: Selector{ServiceID: "/fake-app"},
			want: []w{
				{"10.141.141.10", 31234, true, "toggle.7c99814d-3ad4-11e4-a400-56847afe9799"},
				{"10.141.141.10", 31045, true, "toggle.802df2ae-3ad4-11e4-a400-56847afe9799"},
			},
		},
		{
			name: "app list without tasks", fixture: fxGMApps,
			sel:  Selector{ServiceIDPattern: regexp.MustCompile("fake-app")},
			want: []w{},
		},
		{
			name: "checks, tasks without host, ports or results", fixture: fxNoHCResults,
			sel:  Selector{ServiceID: "/no-health-check-results-app"},
			want: []w{}, logs: []string{"declares no ports"},
		},
		{
			// No state and no startedAt: pre-1.x tasks that never started.
			name: "checks, tasks never started, port override", fixture: fxNoHCResults,
			sel:  Selector{ServiceID: "/no-health-check-results-app", Port: 8080},
			want: []w{},
		},
		{
			name: "host mode, named port (dcos app show)", fixture: fxDCOSAppShow,
			sel:  Selector{ServiceID: "/spark", PortName: "dispatcher-ui"},
			want: []w{{"10.0.2.221", 21516, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"}},
		},
		{
			name: "host mode, all ports", fixture: fxDCOSAppShow,
			sel: Selector{ServiceID: "/spark", AllPorts: true},
			want: []w{
				{"10.0.2.221", 21515, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"},
				{"10.0.2.221", 21516, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"},
				{"10.0.2.221", 21517, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"},
			},
		},
		{
			name: "host mode, CONTAINER_IP is the task IP", fixture: fxDCOSAppShow,
			sel:  Selector{ServiceID: "/spark", PortName: "dispatcher", Type: TypeContainerIP},
			want: []w{{"10.0.2.221", 21515, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"}},
		},
		{
			name: "host mode, port override", fixture: fxDCOSAppShow,
			sel:  Selector{ServiceID: "/spark", PortName: "dispatcher-proxy", Port: 9999},
			want: []w{{"10.0.2.221", 9999, true, "spark.c0efd47d-49b2-11e9-b8cd-1aeaf266c008"}},
		},
		{
			name: "container/bridge 1.5: agent, never the docker bridge IP", fixture: fxM15,
			sel:  Selector{ServiceID: "/pywebserver", PortName: "test"},
			want: []w{{"10.0.2.148", 1565, true, "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"}},
		},
		{
			name: "container/bridge 1.5, AGENT_IP", fixture: fxM15,
			sel:  Selector{ServiceID: "/pywebserver", PortName: "test", Type: TypeAgentIP},
			want: []w{{"10.0.2.148", 1565, true, "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc"}},
		},
		{
			name: "container/bridge 1.5, CONTAINER_IP refused", fixture: fxM15,
			sel:  Selector{ServiceID: "/pywebserver", PortName: "test", Type: TypeContainerIP},
			want: []w{}, logs: []string{"Docker bridge address"},
		},
		{
			name: "container/bridge 1.5, MESOS_HTTP results", fixture: fxZDDBlue15,
			sel: Selector{ServiceID: "/nginx-green"},
			want: []w{
				{"10.0.6.25", 23336, true, "nginx-green.01bf22d4-68a7-11e7-a229-e6a514ca0c21"},
				{"10.0.6.25", 16916, true, "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21"},
				{"10.0.6.25", 31184, true, "nginx-green.01dc95e6-68a7-11e7-a229-e6a514ca0c21"},
			},
		},
		{
			name: "pre-1.5 docker BRIDGE, no state", fixture: fxZDD,
			sel: Selector{ServiceID: "/nginx-green"},
			want: []w{
				{"10.0.6.25", 31184, true, "nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f"},
				{"10.0.6.25", 16916, true, "nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f"},
				{"10.0.6.25", 23336, true, "nginx-green.23532518-c931-11e5-9836-026ee08d9f6f"},
			},
		},
		{
			name: "pattern, anchored by the user", fixture: fxZDD,
			sel: Selector{ServiceIDPattern: regexp.MustCompile(`^/nginx-`)},
			want: []w{
				{"10.0.1.147", 25724, true, "nginx-blue.3a58a46a-c937-11e5-9836-026ee08d9f6f"},
				{"10.0.6.25", 31184, true, "nginx-green.0dbabba6-c931-11e5-9836-026ee08d9f6f"},
				{"10.0.6.25", 16916, true, "nginx-green.1883a887-c931-11e5-9836-026ee08d9f6f"},
				{"10.0.6.25", 23336, true, "nginx-green.23532518-c931-11e5-9836-026ee08d9f6f"},
			},
		},
		{
			name: "pattern is unanchored like Edge-LB's regexp.Match", fixture: fxZDD,
			sel:  Selector{ServiceIDPattern: regexp.MustCompile(`blue`)},
			want: []w{{"10.0.1.147", 25724, true, "nginx-blue.3a58a46a-c937-11e5-9836-026ee08d9f6f"}},
		},
		{
			name: "container network, deployment in progress, no tasks", fixture: fxJuniperApps,
			sel:  Selector{ServiceID: "/app-no-1", PortName: "default"},
			want: []w{},
		},
		{
			name: "tasks only (1.9 ids), host app written here", fixture: fxAllegroTasks,
			apps: func(t *testing.T) []App {
				return withTasks(App{ID: "/test", PortDefinitions: []PortDefinition{{Name: "http"}}, HealthChecks: oneHTTPCheck}, fixtureTasks(t, fxAllegroTasks))
			},
			sel: Selector{ServiceID: "/test", PortName: "http"},
			want: []w{
				{"192.168.2.114", 31797, false, "test.4453212c-1a81-11e5-bdb6-e6cb6734eaf8._app.1"}, // checks, no result yet
				{"192.168.2.114", 31315, true, "test.47de43bd-1a81-11e5-bdb6-e6cb6734eaf8._app.1"},
			},
		},
		{
			name: "tasks only, bridge app written here", fixture: fxGMTasks,
			apps: func(t *testing.T) []App {
				zero := 0
				return withTasks(App{ID: "/bridged-webapp", Networks: []Network{{Mode: "container/bridge"}},
					Container:    &Container{PortMappings: []PortMapping{{ContainerPort: 8080, HostPort: &zero, Name: "http"}}},
					HealthChecks: oneHTTPCheck}, fixtureTasks(t, fxGMTasks))
			},
			sel: Selector{ServiceID: "/bridged-webapp", PortName: "http"},
			want: []w{
				{"10.141.141.10", 31000, true, "bridged-webapp.eb76c51f-4b4a-11e4-ae49-56847afe9799"},
				{"10.141.141.10", 31001, true, "bridged-webapp.ef0b5d91-4b4a-11e4-ae49-56847afe9799"},
			},
		},
		{
			name: "tasks only, hostname hosts kept as names", fixture: fxTasks,
			apps: func(t *testing.T) []App {
				ts := fixtureTasks(t, fxTasks)
				a := withTasks(App{ID: "/frontend-foosball", PortDefinitions: []PortDefinition{{Port: 10019}}}, ts)
				b := withTasks(App{ID: "/tools/docker/registry", PortDefinitions: []PortDefinition{{Port: 5000}}}, ts)
				return append(a, b...)
			},
			sel: Selector{ServiceIDPattern: regexp.MustCompile(`.`)},
			want: []w{
				{"srv4.example.com", 31292, true, "frontend-foosball.083be411-5d1f-11e5-88f7-56b91e7a505b"},
				{"srv2.example.com", 31721, true, "tools_docker_registry.002b4d28-46b9-11e5-b731-525400cce7ed"},
			},
		},
		{
			name: "TASK_STAGING is not routed (app tasks)", fixture: fxAppTasks,
			apps: func(t *testing.T) []App {
				return withTasks(App{ID: "/minecraft/survival-world", PortDefinitions: []PortDefinition{{Port: 0}}}, fixtureTasks(t, fxAppTasks))
			},
			sel:  Selector{ServiceID: "/minecraft/survival-world"},
			want: []w{},
		},
		{
			name: "TASK_STAGING is not routed (app task)", fixture: fxAppTask,
			apps: func(t *testing.T) []App {
				return withTasks(App{ID: "/minecraft/survival-world", PortDefinitions: []PortDefinition{{Port: 0}}}, fixtureTasks(t, fxAppTask))
			},
			sel:  Selector{ServiceID: "/minecraft/survival-world"},
			want: []w{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apps []App
			if tc.apps != nil {
				apps = tc.apps(t)
			} else {
				apps = fixtureApps(t, tc.fixture)
			}
			var logs []string
			got := ResolveLog(apps, tc.sel, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
			if g := project(got); !slices.Equal(g, tc.want) {
				t.Errorf("got  %v\nwant %v", g, tc.want)
			}
			for _, e := range got {
				if e.Draining {
					t.Errorf("%s: draining, want not", e.TaskID)
				}
			}
			for _, l := range tc.logs {
				if !slices.ContainsFunc(logs, func(s string) bool { return strings.Contains(s, l) }) {
					t.Errorf("no log line containing %q in %q", l, logs)
				}
			}
			if !slices.Equal(project(Resolve(apps, tc.sel)), project(got)) {
				t.Errorf("Resolve and ResolveLog differ")
			}
		})
	}
}

// TestEveryTaskFixtureCovered fails when a fixture holding tasks is added to
// shared/ without an expectation here.
func TestEveryTaskFixtureCovered(t *testing.T) {
	covered := map[string]bool{
		fxAllegroApp: true, fxAllegroTasks: true, fxBroken: true, fxFakeApp: true, fxNoHCResults: true,
		fxGMTasks: true, fxDCOSAppShow: true, fxM15: true, fxZDDBlue15: true, fxZDD: true,
		fxAppTask: true, fxAppTasks: true, fxTasks: true,
	}
	entries, err := os.ReadDir(fixturesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || !holdsTasks(readFixture(t, e.Name())) {
			continue
		}
		n++
		if !covered[e.Name()] {
			t.Errorf("fixture %s holds tasks but TestResolveFixtures has no case for it", e.Name())
		}
	}
	if n != len(covered) {
		t.Errorf("%d fixtures hold tasks, %d covered", n, len(covered))
	}
}

// Cases with no captured fixture, written from Marathon's own rules.
func TestResolveRules(t *testing.T) {
	zero := 0
	// AppDefinitionPortAssignmentsTest "a mix of port mappings": http has no
	// hostPort (container IP + containerPort), https has one (agent + task.ports[0]).
	mixed := App{ID: "/mixed", Networks: []Network{{Mode: "container", Name: "dcos"}},
		Container: &Container{PortMappings: []PortMapping{{ContainerPort: 80, Name: "http"}, {ContainerPort: 443, HostPort: &zero, Name: "https"}}},
		Tasks:     []Task{{ID: "mixed.1", Host: "host.some", State: TaskRunning, Ports: []int{30000}, IPAddresses: []IPAddress{{IPAddress: "192.168.0.1"}}}}}
	// The captured TASK_KILLING status_update_event (contrail sample): container
	// network, ipAddresses [9.0.1.3], ports [].
	killing := App{ID: "/pod-with-virtual-network", Networks: []Network{{Mode: "container"}},
		Container: &Container{PortMappings: []PortMapping{{ContainerPort: 80, Name: "web"}}},
		Tasks: []Task{
			{ID: "k.1", Host: "192.168.65.111", State: TaskKilling, Ports: []int{}, IPAddresses: []IPAddress{{IPAddress: "9.0.1.3"}}},
			{ID: "k.2", Host: "192.168.65.111", State: TaskRunning, IPAddresses: []IPAddress{{IPAddress: "9.0.1.4"}}},
			{ID: "k.3", Host: "192.168.65.111", State: TaskRunning}, // IP not known yet
			{ID: "k.4", Host: "192.168.65.111", State: "TASK_FAILED", IPAddresses: []IPAddress{{IPAddress: "9.0.1.5"}}},
			{ID: "k.5", Host: "192.168.65.111", State: "TASK_UNREACHABLE", IPAddresses: []IPAddress{{IPAddress: "9.0.1.6"}}},
		}}
	// Contrail /v2/apps app once a task runs: containerPort 0 without hostPort is port 0.
	juniper := fixtureApps(t, fxJuniperApps)[0]
	juniper.Tasks = []Task{{ID: "app-no-1.1", Host: "10.0.0.2", State: TaskRunning, IPAddresses: []IPAddress{{IPAddress: "9.0.0.9"}}}}
	// Misaligned: one mapping with hostPort but two task ports.
	misaligned := App{ID: "/mis", Networks: []Network{{Mode: "container/bridge"}},
		Container: &Container{PortMappings: []PortMapping{{ContainerPort: 80, Name: "http"}}},
		Tasks:     []Task{{ID: "mis.1", Host: "h", State: TaskRunning, Ports: []int{1, 2}}}}
	// Host mode, task staging ports not allocated.
	shortPorts := App{ID: "/short", PortDefinitions: []PortDefinition{{Name: "a"}, {Name: "b"}},
		Tasks: []Task{{ID: "short.1", Host: "h", State: TaskRunning, Ports: []int{31000}}}}
	// Legacy IP-per-task: ipAddress.discovery.ports, no portMappings.
	legacyIPPT := App{ID: "/ippt", IPAddress: &IPAddressSpec{NetworkName: "dcos"},
		Tasks: []Task{{ID: "ippt.1", Host: "h", State: TaskRunning, IPAddresses: []IPAddress{{IPAddress: "9.0.0.7"}}}}}
	legacyIPPT.IPAddress.Discovery = &struct {
		Ports []DiscoveryPort `json:"ports,omitempty"`
	}{Ports: []DiscoveryPort{{Number: 8080, Name: "rest-endpoint"}}}
	unknownMode := App{ID: "/weird", Networks: []Network{{Mode: "overlay"}}, Tasks: []Task{{ID: "weird.1", State: TaskRunning}}}

	type r struct {
		addr     string
		port     int
		draining bool
		portName string
	}
	proj := func(eps []Endpoint) []r {
		out := []r{}
		for _, e := range eps {
			out = append(out, r{e.Address, e.Port, e.Draining, e.PortName})
		}
		return out
	}
	tests := []struct {
		name string
		apps []App
		sel  Selector
		want []r
		logs []string
	}{
		{"mixed: no hostPort -> container IP", []App{mixed}, Selector{ServiceID: "/mixed", PortName: "http"}, []r{{"192.168.0.1", 80, false, "http"}}, nil},
		{"mixed: hostPort -> agent, cursor not index", []App{mixed}, Selector{ServiceID: "/mixed", PortName: "https"}, []r{{"host.some", 30000, false, "https"}}, nil},
		{"mixed: all ports", []App{mixed}, Selector{ServiceID: "/mixed", AllPorts: true}, []r{{"192.168.0.1", 80, false, "http"}, {"host.some", 30000, false, "https"}}, nil},
		{"mixed: AGENT_IP skips container-only port", []App{mixed}, Selector{ServiceID: "/mixed", PortName: "http", Type: TypeAgentIP}, []r{}, []string{"AGENT_IP cannot reach it"}},
		{"mixed: CONTAINER_IP uses containerPort", []App{mixed}, Selector{ServiceID: "/mixed", PortName: "https", Type: TypeContainerIP}, []r{{"192.168.0.1", 443, false, "https"}}, nil},
		{"killing drains, IP-less and terminal skipped", []App{killing}, Selector{ServiceID: "/pod-with-virtual-network", PortName: "web"},
			[]r{{"9.0.1.3", 80, true, "web"}, {"9.0.1.4", 80, false, "web"}}, []string{`skipping task "k.3" port "web": no container IP address yet`}},
		{"containerPort 0 without hostPort is rejected", []App{juniper}, Selector{ServiceID: "/app-no-1", PortName: "default"}, []r{}, []string{"invalid port 0"}},
		{"containerPort 0 with port override", []App{juniper}, Selector{ServiceID: "/app-no-1", PortName: "default", Port: 8080}, []r{{"9.0.0.9", 8080, false, "default"}}, nil},
		{"misaligned ports skipped", []App{misaligned}, Selector{ServiceID: "/mis"}, []r{}, []string{"2 host ports for 1 port mappings"}},
		{"host ports not allocated yet", []App{shortPorts}, Selector{ServiceID: "/short", PortName: "b"}, []r{}, []string{"port index 1 has none yet"}},
		{"host ports: first still resolves", []App{shortPorts}, Selector{ServiceID: "/short", PortName: "a"}, []r{{"h", 31000, false, "a"}}, nil},
		{"legacy IP-per-task discovery ports", []App{legacyIPPT}, Selector{ServiceID: "/ippt", PortName: "rest-endpoint"}, []r{{"9.0.0.7", 8080, false, "rest-endpoint"}}, nil},
		{"unknown network mode skips only that app", []App{unknownMode, mixed}, Selector{ServiceIDPattern: regexp.MustCompile(`^/(weird|mixed)$`), PortName: "http"}, []r{{"192.168.0.1", 80, false, "http"}}, []string{`skipping app "/weird": unknown network mode "overlay"`}},
		{"unsupported type", []App{mixed}, Selector{ServiceID: "/mixed", Type: "ADDRESS"}, []r{}, []string{`unsupported endpoint type "ADDRESS"`}},
		{"no selector matches nothing", []App{mixed}, Selector{}, []r{}, nil},
		{"id and pattern must both match", []App{mixed}, Selector{ServiceID: "/mixed", ServiceIDPattern: regexp.MustCompile("other"), PortName: "http"}, []r{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs []string
			got := proj(ResolveLog(tc.apps, tc.sel, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			for _, l := range tc.logs {
				if !slices.ContainsFunc(logs, func(s string) bool { return strings.Contains(s, l) }) {
					t.Errorf("no log line containing %q in %q", l, logs)
				}
			}
		})
	}
}

// App definitions from marathon-lb's CI (no tasks in the files): the mode
// detection of each shape, with one task written here.
func TestResolveDefinitionShapes(t *testing.T) {
	task := Task{ID: "x.1", Host: "10.0.0.7", State: TaskRunning, Ports: []int{31005}, IPAddresses: []IPAddress{{IPAddress: "9.0.0.5"}}}
	tests := []struct {
		fixture string
		ports   []int
		sel     Selector
		want    []w
	}{
		// docker.network HOST + portDefinitions -> agent + task.ports[0].
		{fxDockerHost, []int{31005}, Selector{ServiceID: "/nginx-docker-host"}, []w{{"10.0.0.7", 31005, true, "x.1"}}},
		// ipAddress (legacy IP-per-task) + portMappings without hostPort -> container IP + 80.
		{fxDockerIPPC, nil, Selector{ServiceID: "/nginx-docker-ippc"}, []w{{"9.0.0.5", 80, true, "x.1"}}},
		// networks container without portMappings: no declared port, endpoint.port gives one.
		{fxUCRIPPC, nil, Selector{ServiceID: "/nginx-ucr-ippc"}, []w{}},
		{fxUCRIPPC, nil, Selector{ServiceID: "/nginx-ucr-ippc", Port: 80}, []w{{"9.0.0.5", 80, true, "x.1"}}},
		{fxUCRIPPC, nil, Selector{ServiceID: "/nginx-ucr-ippc", Port: 80, AllPorts: true}, []w{{"9.0.0.5", 80, true, "x.1"}}},
		// docker.network BRIDGE wins over the (contradictory) ipAddress of the RAML example.
		{fxExampleApp, []int{31999}, Selector{ServiceID: "/foo", PortName: "http"}, []w{{"10.0.0.7", 31999, false, "x.1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.fixture+" "+tc.sel.ServiceID, func(t *testing.T) {
			apps := fixtureApps(t, tc.fixture)
			tk := task
			tk.Ports = tc.ports
			apps[0].Tasks = []Task{tk}
			if got := project(Resolve(apps, tc.sel)); !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestDecodeAppsSkipsMalformed(t *testing.T) {
	body := []byte(`{"apps": [
		{"id": "/bad", "instances": "four"},
		{"id": "/good", "portDefinitions": [{"port": 0, "name": "http"}], "tasks": [
			{"id": "good.1", "host": "10.0.0.1", "state": "TASK_RUNNING", "ports": [31000]},
			{"id": "good.2", "host": "10.0.0.1", "state": "TASK_RUNNING", "ports": "31001"},
			{"host": "10.0.0.1", "state": "TASK_RUNNING", "ports": [31002]}
		]},
		{"instances": 1},
		42
	]}`)
	var logs []string
	apps, broken, err := decodeApps(body, func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || apps[0].ID != "/good" || len(apps[0].Tasks) != 1 {
		t.Fatalf("apps = %+v", apps)
	}
	if !slices.Equal(broken, []string{"/bad"}) {
		t.Errorf("broken = %q", broken)
	}
	for _, want := range []string{`skipping app "/bad"`, `app "/good": skipping task "good.2"`, `app "/good": skipping task #2: no id`, "skipping app #2: no id", "skipping app #3"} {
		if !slices.ContainsFunc(logs, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no log containing %q in %q", want, logs)
		}
	}
	eps := Resolve(apps, Selector{ServiceID: "/good", PortName: "http"})
	if g := project(eps); !slices.Equal(g, []w{{"10.0.0.1", 31000, true, "good.1"}}) {
		t.Errorf("endpoints %v", g)
	}
	for _, bad := range []string{``, `[]`, `{"message": "x"}`, `<html>`, `{"apps": 3}`} {
		if _, err := DecodeApps([]byte(bad), nil); err == nil {
			t.Errorf("DecodeApps(%q): no error", bad)
		}
	}
}

func TestSelectorMatchesApp(t *testing.T) {
	tests := []struct {
		sel  Selector
		id   string
		want bool
	}{
		{Selector{ServiceID: "/customer"}, "/customer", true},
		{Selector{ServiceID: "customer"}, "/customer", true},
		{Selector{ServiceID: "/customer"}, "customer", true},
		{Selector{ServiceID: "/customer"}, "/customer-v2", false},
		{Selector{ServiceIDPattern: regexp.MustCompile("customer")}, "/customer-v2", true},
		{Selector{ServiceIDPattern: regexp.MustCompile("^/customer$")}, "/customer-v2", false},
		{Selector{ServiceIDPattern: regexp.MustCompile("^/customer$")}, "customer", true},
		{Selector{}, "/customer", false},
	}
	for _, tc := range tests {
		if got := tc.sel.MatchesApp(tc.id); got != tc.want {
			t.Errorf("%+v.MatchesApp(%q) = %v, want %v", tc.sel, tc.id, got, tc.want)
		}
	}
}
