package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Logf is the logging hook used throughout the package. A nil Logf discards.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// Endpoint is one backend address of a selected app task.
//
// Sets of endpoints are sorted by TaskID, then Port (then Address and
// PortName) and are treated as immutable once delivered: callers must not
// modify a slice they receive.
type Endpoint struct {
	Address  string // IP or hostname (task.host may be a DNS name); never resolved here
	Port     int
	Healthy  bool // no health checks, or every Marathon health result alive
	Draining bool // TASK_KILLING: send no new requests, let in-flight ones finish
	TaskID   string
	AppID    string
	PortName string // the declared port's name, "" for unnamed ports
}

// Endpoint address types of an Edge-LB V2 service endpoint (endpoint.type).
const (
	TypeAutoIP      = "AUTO_IP"
	TypeAgentIP     = "AGENT_IP"
	TypeContainerIP = "CONTAINER_IP"
)

// Selector picks endpoints the way an Edge-LB V2 backend service does.
type Selector struct {
	// ServiceID is a Marathon app id such as "/customer". The leading
	// slash is optional; the match is exact.
	ServiceID string
	// ServiceIDPattern, when ServiceID is empty, selects every app whose id
	// (with its leading slash) matches. Edge-LB evaluates its *Pattern fields
	// with Go's regexp.Match, which is NOT anchored: "customer" also selects
	// "/customer-v2". Write ^...$ for an exact match. When both fields are
	// set, both must match.
	ServiceIDPattern *regexp.Regexp
	// PortName is the portDefinitions[].name / portMappings[].name to use.
	// Empty means the first declared port (Edge-LB's default for auto pools).
	PortName string
	// Port, when > 0, replaces the discovered port number (Edge-LB
	// endpoint.port), keeping the discovered address.
	Port int
	// AllPorts selects every declared port of the app (endpoint.allPorts).
	AllPorts bool
	// Type is AUTO_IP (default when empty), AGENT_IP or CONTAINER_IP.
	Type string
}

// MatchesApp reports whether the selector selects the Marathon app id.
func (s Selector) MatchesApp(appID string) bool {
	id := absID(appID)
	if s.ServiceID == "" && s.ServiceIDPattern == nil {
		return false
	}
	if s.ServiceID != "" && absID(s.ServiceID) != id {
		return false
	}
	if s.ServiceIDPattern != nil && !s.ServiceIDPattern.MatchString(id) {
		return false
	}
	return true
}

func absID(id string) string {
	if id == "" || id[0] == '/' {
		return id
	}
	return "/" + id
}

// App is the subset of a Marathon app (GET /v2/apps?embed=apps.tasks) that
// discovery reads. Both the 1.5+ shape (networks, container.portMappings)
// and the older one (container.docker.network/portMappings, ipAddress,
// top-level ports) decode into it.
type App struct {
	ID                    string                 `json:"id"`
	Version               string                 `json:"version,omitempty"`
	Instances             int                    `json:"instances"`
	Networks              []Network              `json:"networks,omitempty"`
	Container             *Container             `json:"container,omitempty"`
	PortDefinitions       []PortDefinition       `json:"portDefinitions,omitempty"`
	Ports                 []int                  `json:"ports,omitempty"` // legacy (<1.5) service ports
	RequirePorts          bool                   `json:"requirePorts,omitempty"`
	IPAddress             *IPAddressSpec         `json:"ipAddress,omitempty"` // legacy IP-per-task
	HealthChecks          []HealthCheck          `json:"healthChecks,omitempty"`
	Labels                map[string]string      `json:"labels,omitempty"`
	Deployments           []Deployment           `json:"deployments,omitempty"`
	ReadinessCheckResults []ReadinessCheckResult `json:"readinessCheckResults,omitempty"`
	Tasks                 []Task                 `json:"tasks,omitempty"`
}

// Network is one entry of app.networks.
type Network struct {
	Mode string `json:"mode,omitempty"` // "host", "container/bridge", "container" (default when absent)
	Name string `json:"name,omitempty"`
}

// Container is app.container.
type Container struct {
	Type         string        `json:"type,omitempty"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	Docker       *Docker       `json:"docker,omitempty"`
}

// Docker is app.container.docker; Network and PortMappings are the pre-1.5
// places of the networking mode and the port mappings.
type Docker struct {
	Image        string        `json:"image,omitempty"`
	Network      string        `json:"network,omitempty"` // HOST, BRIDGE, USER
	PortMappings []PortMapping `json:"portMappings,omitempty"`
}

// PortMapping is one container port mapping. HostPort is nil when the
// mapping does not ask for a host port (only meaningful in container mode:
// in bridge mode Marathon turns a missing hostPort into 0, "allocate").
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      *int              `json:"hostPort,omitempty"`
	ServicePort   int               `json:"servicePort,omitempty"`
	Protocol      string            `json:"protocol,omitempty"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	NetworkNames  []string          `json:"networkNames,omitempty"`
}

// PortDefinition is one host-networking port declaration.
type PortDefinition struct {
	Port     int               `json:"port"`
	Name     string            `json:"name,omitempty"`
	Protocol string            `json:"protocol,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// IPAddressSpec is the deprecated (<1.5) IP-per-task app.ipAddress.
type IPAddressSpec struct {
	NetworkName string `json:"networkName,omitempty"`
	Discovery   *struct {
		Ports []DiscoveryPort `json:"ports,omitempty"`
	} `json:"discovery,omitempty"`
}

// DiscoveryPort is one port of app.ipAddress.discovery.ports.
type DiscoveryPort struct {
	Number   int    `json:"number"`
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
}

// HealthCheck is the part of app.healthChecks[] discovery looks at: only
// their presence matters for health, the rest is informative.
type HealthCheck struct {
	Protocol  string `json:"protocol,omitempty"`
	PortIndex *int   `json:"portIndex,omitempty"`
	Port      *int   `json:"port,omitempty"`
	Path      string `json:"path,omitempty"`
}

// Deployment is one entry of app.deployments (non-empty while deploying).
type Deployment struct {
	ID string `json:"id"`
}

// ReadinessCheckResult is one entry of app.readinessCheckResults.
type ReadinessCheckResult struct {
	Name   string `json:"name"`
	TaskID string `json:"taskId"`
	Ready  bool   `json:"ready"`
}

// Task is one embedded task of an app.
type Task struct {
	ID                 string              `json:"id"`
	AppID              string              `json:"appId,omitempty"`
	Host               string              `json:"host,omitempty"`
	State              string              `json:"state,omitempty"` // absent in pre-1.x output
	Ports              []int               `json:"ports,omitempty"` // host ports, one per declaration that has one
	ServicePorts       []int               `json:"servicePorts,omitempty"`
	IPAddresses        []IPAddress         `json:"ipAddresses,omitempty"`
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults,omitempty"`
	StagedAt           string              `json:"stagedAt,omitempty"`
	StartedAt          string              `json:"startedAt,omitempty"`
	Version            string              `json:"version,omitempty"`
	SlaveID            string              `json:"slaveId,omitempty"`
}

// IPAddress is one entry of task.ipAddresses.
type IPAddress struct {
	IPAddress string `json:"ipAddress"`
	Protocol  string `json:"protocol,omitempty"`
}

// HealthCheckResult is one entry of task.healthCheckResults.
type HealthCheckResult struct {
	Alive               bool   `json:"alive"`
	ConsecutiveFailures int    `json:"consecutiveFailures,omitempty"`
	InstanceID          string `json:"instanceId,omitempty"` // opaque; ≤1.3 used taskId
	TaskID              string `json:"taskId,omitempty"`
}

// Mesos task states discovery cares about.
const (
	TaskRunning = "TASK_RUNNING"
	TaskKilling = "TASK_KILLING"
)

// DecodeApps decodes a GET /v2/apps body ({"apps": [...]}), a GET
// /v2/apps/{id} body ({"app": {...}}) or a bare app object. An app or task
// that does not decode is skipped and logged by id; only a body that is not
// one of these shapes at all is an error.
func DecodeApps(data []byte, logf Logf) ([]App, error) {
	apps, _, err := decodeApps(data, logf)
	return apps, err
}

// appWire is App with tasks left raw so that one bad task cannot spoil its app.
type appWire struct {
	App
	Tasks []json.RawMessage `json:"tasks"`
}

// decodeApps also returns the ids of the apps that did not decode, so that
// the Watcher can keep their previous state instead of dropping them.
func decodeApps(data []byte, logf Logf) (apps []App, broken []string, err error) {
	var top struct {
		Apps *[]json.RawMessage `json:"apps"`
		App  json.RawMessage    `json:"app"`
		ID   json.RawMessage    `json:"id"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("decode apps: %w", err)
	}
	var raws []json.RawMessage
	switch {
	case top.Apps != nil:
		raws = *top.Apps
	case len(top.App) > 0 && !bytes.Equal(top.App, []byte("null")):
		raws = []json.RawMessage{top.App}
	case len(top.ID) > 0:
		raws = []json.RawMessage{data}
	default:
		return nil, nil, fmt.Errorf("decode apps: body has neither %q nor %q", "apps", "app")
	}
	apps = make([]App, 0, len(raws))
	for i, raw := range raws {
		app, err := decodeApp(raw, logf)
		if err != nil {
			id := rawAppID(raw)
			if id == "" {
				logf.printf("discovery: skipping app #%d: %v", i, err)
				continue
			}
			logf.printf("discovery: skipping app %q: %v", id, err)
			broken = append(broken, absID(id))
			continue
		}
		apps = append(apps, app)
	}
	return apps, broken, nil
}

func decodeApp(raw json.RawMessage, logf Logf) (App, error) {
	var w appWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return App{}, err
	}
	app := w.App
	if app.ID == "" {
		return App{}, fmt.Errorf("no id")
	}
	app.ID = absID(app.ID)
	app.Tasks = make([]Task, 0, len(w.Tasks))
	for i, rt := range w.Tasks {
		var t Task
		if err := json.Unmarshal(rt, &t); err != nil {
			if id := rawAppID(rt); id != "" {
				logf.printf("discovery: app %q: skipping task %q: %v", app.ID, id, err)
			} else {
				logf.printf("discovery: app %q: skipping task #%d: %v", app.ID, i, err)
			}
			continue
		}
		if t.ID == "" {
			logf.printf("discovery: app %q: skipping task #%d: no id", app.ID, i)
			continue
		}
		app.Tasks = append(app.Tasks, t)
	}
	return app, nil
}

// rawAppID digs the id out of an app or task that failed to decode, if it can.
func rawAppID(raw json.RawMessage) string {
	var probe struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	s, _ := probe.ID.(string)
	return s
}
