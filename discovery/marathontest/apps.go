package marathontest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AppDefinition is a Marathon app as posted to POST /v2/apps (the seed's
// customer.json decodes into it). Fields Marathon would default are
// defaulted by the fake the way Marathon 1.5+ does; the legacy (<1.5)
// container.docker.network / docker.portMappings / ipAddress / ports forms
// are accepted and normalised to networks + portMappings/portDefinitions.
type AppDefinition struct {
	ID              string            `json:"id"`
	Cmd             string            `json:"cmd,omitempty"`
	User            string            `json:"user,omitempty"`
	Instances       *int              `json:"instances,omitempty"` // default 1
	CPUs            float64           `json:"cpus,omitempty"`
	Mem             float64           `json:"mem,omitempty"`
	Disk            float64           `json:"disk,omitempty"`
	GPUs            int               `json:"gpus,omitempty"`
	Container       *Container        `json:"container,omitempty"`
	Networks        []Network         `json:"networks,omitempty"`
	PortDefinitions []PortDefinition  `json:"portDefinitions,omitempty"`
	Ports           []int             `json:"ports,omitempty"` // legacy: service ports
	RequirePorts    bool              `json:"requirePorts,omitempty"`
	IPAddress       *IPAddress        `json:"ipAddress,omitempty"` // legacy IP-per-task
	HealthChecks    []HealthCheck     `json:"healthChecks,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	Env             map[string]any    `json:"env,omitempty"`
}

// Container is app.container.
type Container struct {
	Type         string        `json:"type,omitempty"` // DOCKER or MESOS
	Docker       *Docker       `json:"docker,omitempty"`
	Volumes      []any         `json:"volumes,omitempty"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
}

// Docker is app.container.docker.
type Docker struct {
	Image          string        `json:"image,omitempty"`
	Network        string        `json:"network,omitempty"` // legacy HOST|BRIDGE|USER
	PortMappings   []PortMapping `json:"portMappings,omitempty"`
	ForcePullImage bool          `json:"forcePullImage,omitempty"`
	Privileged     bool          `json:"privileged,omitempty"`
	Parameters     []any         `json:"parameters,omitempty"`
}

// PortMapping is one container port mapping; a nil HostPort asks for none.
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      *int              `json:"hostPort,omitempty"`
	ServicePort   int               `json:"servicePort,omitempty"`
	Protocol      string            `json:"protocol,omitempty"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// PortDefinition is one host-networking port.
type PortDefinition struct {
	Port     int               `json:"port"`
	Name     string            `json:"name,omitempty"`
	Protocol string            `json:"protocol,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Network is one entry of app.networks.
type Network struct {
	Mode string `json:"mode,omitempty"`
	Name string `json:"name,omitempty"`
}

// IPAddress is the legacy app.ipAddress.
type IPAddress struct {
	NetworkName string `json:"networkName,omitempty"`
	Discovery   *struct {
		Ports []struct {
			Number   int    `json:"number"`
			Name     string `json:"name,omitempty"`
			Protocol string `json:"protocol,omitempty"`
		} `json:"ports,omitempty"`
	} `json:"discovery,omitempty"`
}

// HealthCheck is one app health check. The fake does not run it: results
// come from SetTaskHealth (and an alive result at start unless
// Options.NoInitialHealth).
type HealthCheck struct {
	Protocol               string `json:"protocol,omitempty"` // default HTTP
	Path                   string `json:"path,omitempty"`
	PortIndex              *int   `json:"portIndex,omitempty"`
	GracePeriodSeconds     int    `json:"gracePeriodSeconds,omitempty"`
	IntervalSeconds        int    `json:"intervalSeconds,omitempty"`
	TimeoutSeconds         int    `json:"timeoutSeconds,omitempty"`
	MaxConsecutiveFailures int    `json:"maxConsecutiveFailures,omitempty"`
	DelaySeconds           int    `json:"delaySeconds,omitempty"`
}

// ParseAppDefinition decodes an app definition; unknown fields are ignored.
func ParseAppDefinition(data []byte) (AppDefinition, error) {
	var d AppDefinition
	if err := json.Unmarshal(data, &d); err != nil {
		return AppDefinition{}, fmt.Errorf("app definition: %w", err)
	}
	if d.ID == "" {
		return AppDefinition{}, fmt.Errorf("app definition: no id")
	}
	return d, nil
}

// Networking modes.
const (
	modeHost      = "host"
	modeBridge    = "container/bridge"
	modeContainer = "container"
)

// Task states the fake produces.
const (
	StateStaging = "TASK_STAGING"
	StateRunning = "TASK_RUNNING"
	StateKilling = "TASK_KILLING"
	StateKilled  = "TASK_KILLED"
)

type app struct {
	id           string
	def          AppDefinition // normalised: networks, ports and mappings filled in
	mode         string
	instances    int
	version      time.Time
	lastScaling  time.Time
	lastConfig   time.Time
	tasks        []*task
	deployments  []string
	backends     []string // free backend addresses, used by new tasks in order
	pendingKills int      // kills of the running deployment not finished yet
}

type task struct {
	id       string
	uuid     string
	host     string
	ports    []int
	ip       string
	state    string
	stagedAt time.Time
	started  time.Time
	version  time.Time
	backend  string
	health   *health // nil: no result yet
}

type health struct {
	alive        bool
	failures     int
	firstSuccess time.Time
	lastSuccess  time.Time
	lastFailure  time.Time
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x10 // time-based layout, like Marathon's ids
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// taskPrefix turns "/group/app" into "group_app" (Marathon's task id prefix).
func taskPrefix(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_")
}

func absID(id string) string {
	if strings.HasPrefix(id, "/") {
		return id
	}
	return "/" + id
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// normalize applies Marathon's defaults; it must run under s.mu.
func (s *Server) normalize(d AppDefinition) (AppDefinition, string, error) {
	d.ID = absID(d.ID)
	if d.Instances == nil {
		one := 1
		d.Instances = &one
	}
	if *d.Instances < 0 {
		return d, "", fmt.Errorf("instances must be >= 0")
	}
	if d.CPUs == 0 {
		d.CPUs = 1
	}
	if d.Mem == 0 {
		d.Mem = 128
	}
	mode := modeHost
	c := d.Container
	switch {
	case len(d.Networks) > 0:
		mode = d.Networks[0].Mode
		if mode == "" {
			mode = modeContainer
		}
	case c != nil && c.Docker != nil && c.Docker.Network != "":
		switch strings.ToUpper(c.Docker.Network) {
		case "BRIDGE":
			mode = modeBridge
		case "USER":
			mode = modeContainer
		case "HOST":
			mode = modeHost
		default:
			return d, "", fmt.Errorf("unknown docker network %q", c.Docker.Network)
		}
	case d.IPAddress != nil:
		mode = modeContainer
	}
	if mode != modeHost && mode != modeBridge && mode != modeContainer {
		return d, "", fmt.Errorf("unknown network mode %q", mode)
	}
	// Marathon 1.5+ answers with networks and container.portMappings only.
	netName := "dcos"
	if d.IPAddress != nil && d.IPAddress.NetworkName != "" {
		netName = d.IPAddress.NetworkName
	}
	if len(d.Networks) == 0 {
		d.Networks = []Network{{Mode: mode}}
		if mode == modeContainer {
			d.Networks[0].Name = netName
		}
	}
	for i := range d.Networks {
		if d.Networks[i].Mode == "" {
			d.Networks[i].Mode = modeContainer
		}
		if d.Networks[i].Mode == modeContainer && d.Networks[i].Name == "" {
			d.Networks[i].Name = netName
		}
	}
	if c != nil && c.Docker != nil {
		cc := *c
		dc := *c.Docker
		if cc.PortMappings == nil {
			cc.PortMappings = dc.PortMappings
		}
		dc.Network, dc.PortMappings = "", nil
		cc.Docker = &dc
		d.Container = &cc
		c = d.Container
	}
	if mode == modeHost {
		if d.PortDefinitions == nil {
			if d.Ports != nil {
				for _, p := range d.Ports {
					d.PortDefinitions = append(d.PortDefinitions, PortDefinition{Port: p})
				}
			} else {
				d.PortDefinitions = []PortDefinition{{Port: 0, Name: "default"}}
			}
		}
		pds := slices.Clone(d.PortDefinitions)
		for i := range pds {
			if pds[i].Protocol == "" {
				pds[i].Protocol = "tcp"
			}
			if pds[i].Port == 0 {
				pds[i].Port = s.allocServicePort()
			}
		}
		d.PortDefinitions = pds
	} else {
		if c == nil {
			c = &Container{Type: "MESOS"}
			d.Container = c
		}
		if c.PortMappings == nil && d.IPAddress != nil && d.IPAddress.Discovery != nil {
			for _, p := range d.IPAddress.Discovery.Ports {
				c.PortMappings = append(c.PortMappings, PortMapping{ContainerPort: p.Number, Name: p.Name, Protocol: p.Protocol})
			}
		}
		if c.PortMappings == nil {
			c.PortMappings = []PortMapping{{ContainerPort: 0, Name: "default"}}
		}
		pms := slices.Clone(c.PortMappings)
		for i := range pms {
			if mode == modeBridge && pms[i].HostPort == nil {
				zero := 0
				pms[i].HostPort = &zero
			}
			if pms[i].Protocol == "" {
				pms[i].Protocol = "tcp"
			}
			if pms[i].ServicePort == 0 {
				pms[i].ServicePort = s.allocServicePort()
			}
			if pms[i].Labels == nil {
				pms[i].Labels = map[string]string{}
			}
		}
		c.PortMappings = pms
		d.PortDefinitions = nil
	}
	if d.Container != nil && d.Container.Type == "" {
		d.Container.Type = "DOCKER"
	}
	d.Ports, d.IPAddress = nil, nil
	for i := range d.HealthChecks {
		h := &d.HealthChecks[i]
		if h.Protocol == "" {
			h.Protocol = "HTTP"
		}
		if h.GracePeriodSeconds == 0 {
			h.GracePeriodSeconds = 300
		}
		if h.IntervalSeconds == 0 {
			h.IntervalSeconds = 60
		}
		if h.TimeoutSeconds == 0 {
			h.TimeoutSeconds = 20
		}
		if h.MaxConsecutiveFailures == 0 {
			h.MaxConsecutiveFailures = 3
		}
		if h.PortIndex == nil && h.Protocol != "COMMAND" {
			zero := 0
			h.PortIndex = &zero
		}
	}
	return d, mode, nil
}

func (s *Server) allocServicePort() int {
	p := s.nextServicePort
	s.nextServicePort++
	return p
}

func (s *Server) allocHostPort() int {
	span := s.opts.HostPortMax - s.opts.HostPortMin + 1
	for range span {
		p := s.opts.HostPortMin + s.hostPortSeq%span
		s.hostPortSeq++
		if !s.usedHostPorts[p] {
			s.usedHostPorts[p] = true
			return p
		}
	}
	panic("marathontest: host port range exhausted")
}

// newTask builds a staging task; it must run under s.mu.
func (s *Server) newTask(a *app, now time.Time) *task {
	id := newUUID()
	t := &task{
		id:       taskPrefix(a.id) + "." + id,
		uuid:     id,
		host:     s.opts.AgentHost,
		state:    StateStaging,
		stagedAt: now,
		version:  a.version,
	}
	backendPort := 0
	if len(a.backends) > 0 {
		t.backend, a.backends = a.backends[0], a.backends[1:]
		host, port, err := net.SplitHostPort(t.backend)
		if err == nil {
			t.host = host
			backendPort, _ = strconv.Atoi(port)
		}
	}
	take := func(fixed int) int {
		switch {
		case backendPort > 0:
			p := backendPort
			backendPort = 0
			return p
		case fixed > 0:
			return fixed
		}
		return s.allocHostPort()
	}
	switch a.mode {
	case modeHost:
		for _, pd := range a.def.PortDefinitions {
			fixed := 0
			if a.def.RequirePorts {
				fixed = pd.Port
			}
			t.ports = append(t.ports, take(fixed))
		}
		t.ip = t.host
	default:
		for _, pm := range a.def.Container.PortMappings {
			if pm.HostPort != nil {
				t.ports = append(t.ports, take(*pm.HostPort))
			}
		}
		s.ipSeq++
		if a.mode == modeBridge {
			// The Docker bridge address: never routable from outside the
			// agent, which is exactly why discovery must not use it. Kept
			// in 127.0.2.0/24 so that nothing can ever dial outside
			// loopback.
			t.ip = fmt.Sprintf("127.0.2.%d", 1+s.ipSeq%250)
		} else {
			t.ip = fmt.Sprintf("127.0.1.%d", 1+s.ipSeq%250)
			if t.backend != "" {
				t.ip = t.host // the backend is the container's own address
				t.host = s.opts.AgentHost
			}
		}
	}
	return t
}

// releaseTask gives back the task's host ports and backend.
func (s *Server) releaseTask(a *app, t *task) {
	for _, p := range t.ports {
		delete(s.usedHostPorts, p)
	}
	if t.backend != "" {
		a.backends = append(a.backends, t.backend)
	}
}

// appJSON renders an app the way Marathon 1.5+ does in GET /v2/apps.
func (s *Server) appJSON(a *app, withTasks, withReadiness, servicePorts bool) map[string]any {
	m := s.appDefinitionJSON(a)
	var staged, running, healthy, unhealthy int
	for _, t := range a.tasks {
		switch t.state {
		case StateStaging:
			staged++
		case StateRunning:
			running++
		}
		if t.health != nil && len(a.def.HealthChecks) > 0 {
			if t.health.alive {
				healthy++
			} else {
				unhealthy++
			}
		}
	}
	m["tasksStaged"], m["tasksRunning"], m["tasksHealthy"], m["tasksUnhealthy"] = staged, running, healthy, unhealthy
	deps := []any{}
	for _, id := range a.deployments {
		deps = append(deps, map[string]any{"id": id})
	}
	m["deployments"] = deps
	if withTasks {
		tasks := []any{}
		for _, t := range a.tasks {
			tasks = append(tasks, s.taskJSON(a, t, servicePorts))
		}
		m["tasks"] = tasks
	}
	if withReadiness {
		m["readinessCheckResults"] = []any{}
	}
	return m
}

// appDefinitionJSON is the app without its status (api_post_event's appDefinition).
func (s *Server) appDefinitionJSON(a *app) map[string]any {
	d := a.def
	m := map[string]any{
		"id":                    a.id,
		"cmd":                   nil,
		"backoffFactor":         1.15,
		"backoffSeconds":        1,
		"cpus":                  d.CPUs,
		"disk":                  d.Disk,
		"executor":              "",
		"gpus":                  d.GPUs,
		"instances":             a.instances,
		"labels":                orEmpty(d.Labels),
		"maxLaunchDelaySeconds": 3600,
		"mem":                   d.Mem,
		"requirePorts":          d.RequirePorts,
		"healthChecks":          healthChecksJSON(d.HealthChecks),
		"upgradeStrategy":       map[string]any{"maximumOverCapacity": 1, "minimumHealthCapacity": 1},
		"killSelection":         "YOUNGEST_FIRST",
		"unreachableStrategy":   map[string]any{"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
		"version":               ts(a.version),
		"versionInfo":           map[string]any{"lastScalingAt": ts(a.lastScaling), "lastConfigChangeAt": ts(a.lastConfig)},
	}
	if d.Cmd != "" {
		m["cmd"] = d.Cmd
	}
	if d.User != "" {
		m["user"] = d.User
	}
	if d.Env != nil {
		m["env"] = d.Env
	}
	nets := []any{}
	for _, n := range d.Networks {
		nm := map[string]any{"mode": n.Mode}
		if n.Name != "" {
			nm["name"] = n.Name
		}
		nets = append(nets, nm)
	}
	m["networks"] = nets
	if a.mode == modeHost {
		pds := []any{}
		for _, pd := range d.PortDefinitions {
			pm := map[string]any{"port": pd.Port, "protocol": pd.Protocol}
			if pd.Name != "" {
				pm["name"] = pd.Name
			}
			if pd.Labels != nil {
				pm["labels"] = pd.Labels
			}
			pds = append(pds, pm)
		}
		m["portDefinitions"] = pds
	}
	if c := d.Container; c != nil {
		cm := map[string]any{"type": c.Type, "volumes": orEmptySlice(c.Volumes)}
		if c.Docker != nil {
			cm["docker"] = map[string]any{
				"image":          c.Docker.Image,
				"forcePullImage": c.Docker.ForcePullImage,
				"privileged":     c.Docker.Privileged,
				"parameters":     orEmptySlice(c.Docker.Parameters),
			}
		}
		if a.mode != modeHost {
			pms := []any{}
			for _, p := range c.PortMappings {
				pm := map[string]any{"containerPort": p.ContainerPort, "protocol": p.Protocol, "servicePort": p.ServicePort, "labels": p.Labels}
				if p.HostPort != nil {
					pm["hostPort"] = *p.HostPort
				}
				if p.Name != "" {
					pm["name"] = p.Name
				}
				pms = append(pms, pm)
			}
			cm["portMappings"] = pms
		}
		m["container"] = cm
	}
	return m
}

func healthChecksJSON(hcs []HealthCheck) []any {
	out := []any{}
	for _, h := range hcs {
		m := map[string]any{
			"protocol":               h.Protocol,
			"gracePeriodSeconds":     h.GracePeriodSeconds,
			"intervalSeconds":        h.IntervalSeconds,
			"timeoutSeconds":         h.TimeoutSeconds,
			"maxConsecutiveFailures": h.MaxConsecutiveFailures,
			"delaySeconds":           max(h.DelaySeconds, 15),
		}
		if h.Path != "" {
			m["path"] = h.Path
		}
		if h.PortIndex != nil {
			m["portIndex"] = *h.PortIndex
		}
		out = append(out, m)
	}
	return out
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func orEmptySlice(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// taskJSON renders a task as Marathon's EnrichedTask. servicePorts are only
// filled by /v2/tasks, never in the apps' embedded tasks.
func (s *Server) taskJSON(a *app, t *task, servicePorts bool) map[string]any {
	m := map[string]any{
		"id":           t.id,
		"appId":        a.id,
		"host":         t.host,
		"state":        t.state,
		"slaveId":      s.agentID,
		"ports":        orEmptyInts(t.ports),
		"ipAddresses":  []any{map[string]any{"ipAddress": t.ip, "protocol": "IPv4"}},
		"servicePorts": []int{},
		"localVolumes": []any{},
		"stagedAt":     ts(t.stagedAt),
		"version":      ts(t.version),
	}
	if !t.started.IsZero() {
		m["startedAt"] = ts(t.started)
	}
	if servicePorts {
		m["servicePorts"] = servicePortsOf(a)
	}
	if len(a.def.HealthChecks) > 0 {
		results := []any{}
		if h := t.health; h != nil {
			results = append(results, map[string]any{
				"alive":               h.alive,
				"consecutiveFailures": h.failures,
				"firstSuccess":        ts(h.firstSuccess),
				"lastSuccess":         ts(h.lastSuccess),
				"lastFailure":         ts(h.lastFailure),
				"lastFailureCause":    nil,
				"instanceId":          instanceID(t),
			})
		}
		m["healthCheckResults"] = results
	}
	return m
}

func instanceID(t *task) string {
	prefix, _, _ := strings.Cut(t.id, ".")
	return prefix + ".marathon-" + t.uuid
}

func orEmptyInts(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}

func servicePortsOf(a *app) []int {
	out := []int{}
	if a.mode == modeHost {
		for _, pd := range a.def.PortDefinitions {
			out = append(out, pd.Port)
		}
		return out
	}
	for _, pm := range a.def.Container.PortMappings {
		out = append(out, pm.ServicePort)
	}
	return out
}
