package discovery

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Networking modes of a Marathon app (network.raml NetworkMode).
const (
	modeHost      = "host"
	modeBridge    = "container/bridge"
	modeContainer = "container"
)

// Resolve returns the endpoints of every task of the apps sel selects,
// sorted by TaskID then Port. It never fails: apps and tasks it cannot
// resolve are left out (ResolveLog says why).
func Resolve(apps []App, sel Selector) []Endpoint {
	return ResolveLog(apps, sel, nil)
}

// ResolveLog is Resolve with a hook that receives one line per app or task
// left out for a reason other than its state (unknown port name, ports not
// allocated yet, no container IP yet, port 0, ...).
//
// The rule is Marathon's own (core/task/state/NetworkInfo.scala,
// computePortAssignments):
//
//   - host networking: declaration i of portDefinitions (legacy: app.ports)
//     is task.host : task.ports[i].
//   - container/bridge: every portMapping has a host port (a missing hostPort
//     means 0, "allocate"); mapping i is task.host : task.ports[i]. The
//     task's ipAddresses hold the Docker bridge address and are never used.
//   - container (USER/CNI/overlay): task.ports has one entry per mapping that
//     HAS a hostPort, in order. Such a mapping is task.host : the next
//     task.ports entry; a mapping without hostPort is
//     task.ipAddresses[0] : containerPort. Indexing task.ports by mapping
//     index would be wrong. A task whose ports do not line up with its
//     mappings is skipped, as Marathon refuses to align them.
//
// Only TASK_RUNNING tasks are selected, plus TASK_KILLING ones marked
// Draining. Tasks from Marathon versions that did not report a state count
// as running once they have a startedAt. A task is Healthy when its app has
// no health checks, or when it has at least one result and all are alive.
//
// AGENT_IP forces task.host and a host port (mappings without one are
// skipped); CONTAINER_IP forces task.ipAddresses[0] with the container port
// (or the host port when containerPort is 0) and is refused for bridge
// networking, whose container address is not routable.
func ResolveLog(apps []App, sel Selector, logf Logf) []Endpoint {
	var out []Endpoint
	for i := range apps {
		app := &apps[i]
		if !sel.MatchesApp(app.ID) {
			continue
		}
		out = resolveApp(out, app, sel, logf)
	}
	sortEndpoints(out)
	return out
}

func sortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		return cmp.Or(
			cmp.Compare(a.TaskID, b.TaskID),
			cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Address, b.Address),
			cmp.Compare(a.PortName, b.PortName),
		)
	})
}

// portDecl is one declared port, whatever its source.
type portDecl struct {
	name          string
	containerPort int
	hasHostPort   bool
	synthetic     bool // no declaration; only sel.Port gives the port
}

func networkMode(app *App) (string, error) {
	if len(app.Networks) > 0 {
		m := app.Networks[0].Mode
		for _, n := range app.Networks[1:] {
			if n.Mode != m {
				return "", fmt.Errorf("networks mix modes %q and %q", m, n.Mode)
			}
		}
		switch m {
		case "":
			return modeContainer, nil
		case modeHost, modeBridge, modeContainer:
			return m, nil
		}
		return "", fmt.Errorf("unknown network mode %q", m)
	}
	if c := app.Container; c != nil && c.Docker != nil && c.Docker.Network != "" {
		switch strings.ToUpper(c.Docker.Network) {
		case "HOST":
			return modeHost, nil
		case "BRIDGE":
			return modeBridge, nil
		case "USER":
			return modeContainer, nil
		}
		return "", fmt.Errorf("unknown container.docker.network %q", c.Docker.Network)
	}
	if app.IPAddress != nil {
		return modeContainer, nil
	}
	return modeHost, nil
}

func declarations(app *App, mode string) []portDecl {
	var decls []portDecl
	if mode == modeHost {
		switch {
		case app.PortDefinitions != nil:
			for _, pd := range app.PortDefinitions {
				decls = append(decls, portDecl{name: pd.Name, hasHostPort: true})
			}
		default:
			for range app.Ports {
				decls = append(decls, portDecl{hasHostPort: true})
			}
		}
		return decls
	}
	var pms []PortMapping
	if c := app.Container; c != nil {
		pms = c.PortMappings
		if pms == nil && c.Docker != nil {
			pms = c.Docker.PortMappings
		}
	}
	for _, pm := range pms {
		decls = append(decls, portDecl{
			name:          pm.Name,
			containerPort: pm.ContainerPort,
			hasHostPort:   mode == modeBridge || pm.HostPort != nil,
		})
	}
	if pms == nil && app.IPAddress != nil && app.IPAddress.Discovery != nil {
		for _, p := range app.IPAddress.Discovery.Ports {
			decls = append(decls, portDecl{name: p.Name, containerPort: p.Number})
		}
	}
	return decls
}

// selectDecls returns the indexes (into decls) the selector asks for.
func selectDecls(decls []portDecl, sel Selector) ([]int, error) {
	switch {
	case sel.AllPorts && len(decls) == 0 && sel.Port > 0:
		return []int{-1}, nil // synthetic: address only
	case sel.AllPorts:
		if len(decls) == 0 {
			return nil, fmt.Errorf("declares no ports")
		}
		idx := make([]int, len(decls))
		for i := range decls {
			idx[i] = i
		}
		return idx, nil
	case sel.PortName != "":
		for i, d := range decls {
			if d.name == sel.PortName {
				return []int{i}, nil
			}
		}
		return nil, fmt.Errorf("no port named %q", sel.PortName)
	case len(decls) > 0:
		return []int{0}, nil
	case sel.Port > 0:
		return []int{-1}, nil // synthetic: address only
	}
	return nil, fmt.Errorf("declares no ports")
}

func resolveApp(out []Endpoint, app *App, sel Selector, logf Logf) []Endpoint {
	typ := sel.Type
	if typ == "" {
		typ = TypeAutoIP
	}
	if typ != TypeAutoIP && typ != TypeAgentIP && typ != TypeContainerIP {
		logf.printf("discovery: app %q: unsupported endpoint type %q", app.ID, typ)
		return out
	}
	mode, err := networkMode(app)
	if err != nil {
		logf.printf("discovery: skipping app %q: %v", app.ID, err)
		return out
	}
	decls := declarations(app, mode)
	idx, err := selectDecls(decls, sel)
	if err != nil {
		logf.printf("discovery: app %q: %v", app.ID, err)
		return out
	}
	hasChecks := len(app.HealthChecks) > 0
	for ti := range app.Tasks {
		t := &app.Tasks[ti]
		draining, ok := selectState(t)
		if !ok {
			continue
		}
		healthy := !hasChecks || allAlive(t.HealthCheckResults)
		for _, k := range idx {
			d := portDecl{synthetic: true, hasHostPort: mode != modeContainer}
			if k >= 0 {
				d = decls[k]
			}
			addr, port, err := taskAddress(t, mode, decls, k, d, typ)
			if err != nil {
				logf.printf("discovery: app %q: skipping task %q port %q: %v", app.ID, t.ID, d.name, err)
				continue
			}
			if sel.Port > 0 {
				port = sel.Port
			}
			if port <= 0 || port > 65535 {
				logf.printf("discovery: app %q: skipping task %q port %q: invalid port %d", app.ID, t.ID, d.name, port)
				continue
			}
			out = append(out, Endpoint{
				Address:  addr,
				Port:     port,
				Healthy:  healthy,
				Draining: draining,
				TaskID:   t.ID,
				AppID:    app.ID,
				PortName: d.name,
			})
		}
	}
	return out
}

// selectState reports whether the task is routable and whether it drains.
func selectState(t *Task) (draining, ok bool) {
	switch t.State {
	case TaskRunning:
		return false, true
	case TaskKilling:
		return true, true
	case "":
		// Pre-1.x Marathon did not report a state: such a task is running
		// once it has started.
		return false, t.StartedAt != ""
	}
	return false, false
}

func allAlive(rs []HealthCheckResult) bool {
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if !r.Alive {
			return false
		}
	}
	return true
}

// taskAddress applies Marathon's assignment rule for declaration k (or a
// synthetic declaration when k < 0) and then the endpoint type.
func taskAddress(t *Task, mode string, decls []portDecl, k int, d portDecl, typ string) (string, int, error) {
	hostPort, err := hostPortOf(t, mode, decls, k)
	if err != nil {
		return "", 0, err
	}
	containerIP := func() (string, error) {
		if len(t.IPAddresses) == 0 || t.IPAddresses[0].IPAddress == "" {
			return "", fmt.Errorf("no container IP address yet")
		}
		return t.IPAddresses[0].IPAddress, nil
	}
	agent := func() (string, error) {
		if t.Host == "" {
			return "", fmt.Errorf("no host")
		}
		return t.Host, nil
	}
	switch typ {
	case TypeAgentIP:
		if !d.hasHostPort {
			return "", 0, fmt.Errorf("port has no host port, AGENT_IP cannot reach it")
		}
		a, err := agent()
		return a, hostPort, err
	case TypeContainerIP:
		switch mode {
		case modeBridge:
			return "", 0, fmt.Errorf("CONTAINER_IP on bridge networking would be the unroutable Docker bridge address")
		case modeHost:
			if ip, err := containerIP(); err == nil {
				return ip, hostPort, nil
			}
			a, err := agent()
			return a, hostPort, err
		}
		ip, err := containerIP()
		port := d.containerPort
		if port == 0 {
			port = hostPort
		}
		return ip, port, err
	}
	// AUTO_IP: Marathon's rule (Mesos DiscoveryInfo network-scope).
	if d.hasHostPort {
		a, err := agent()
		return a, hostPort, err
	}
	ip, err := containerIP()
	return ip, d.containerPort, err
}

// hostPortOf returns the host port of declaration k (0 when it has none).
func hostPortOf(t *Task, mode string, decls []portDecl, k int) (int, error) {
	if k < 0 {
		return 0, nil
	}
	if mode == modeHost {
		if k >= len(t.Ports) {
			return 0, fmt.Errorf("task has %d host ports, port index %d has none yet", len(t.Ports), k)
		}
		return t.Ports[k], nil
	}
	want := 0
	j := -1
	for i, d := range decls {
		if d.hasHostPort {
			if i == k {
				j = want
			}
			want++
		}
	}
	if len(t.Ports) != want {
		return 0, fmt.Errorf("task has %d host ports for %d port mappings with a host port", len(t.Ports), want)
	}
	if j < 0 {
		return 0, nil
	}
	return t.Ports[j], nil
}
