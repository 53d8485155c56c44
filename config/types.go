package config

import "regexp"

// The types below mirror the Edge-LB V2 pool JSON field for field. Pointer
// fields are the ones the schema marks nullable or whose absence differs from
// their zero value; after Parse every pointer that has a documented default is
// non-nil, so consumers read them through the accessor methods without nil
// checks.

// Pool is one Edge-LB V2 pool (the body of `dcos edgelb create pool.json`).
type Pool struct {
	APIVersion                 string            `json:"apiVersion"`
	Name                       string            `json:"name"`
	Namespace                  *string           `json:"namespace,omitempty"`
	PackageName                string            `json:"packageName,omitempty"`
	PackageVersion             string            `json:"packageVersion,omitempty"`
	Role                       string            `json:"role,omitempty"`
	Principal                  *string           `json:"principal,omitempty"`
	SecretName                 *string           `json:"secretName,omitempty"`
	CPUs                       *float64          `json:"cpus,omitempty"`
	CPUsAdminOverhead          *float64          `json:"cpusAdminOverhead,omitempty"`
	Mem                        *int32            `json:"mem,omitempty"`
	MemAdminOverhead           *int32            `json:"memAdminOverhead,omitempty"`
	Disk                       *int32            `json:"disk,omitempty"`
	Count                      *int32            `json:"count,omitempty"`
	Constraints                *string           `json:"constraints,omitempty"`
	Ports                      []int32           `json:"ports"`
	Secrets                    []Secret          `json:"secrets"`
	EnvironmentVariables       map[string]string `json:"environmentVariables,omitempty"`
	AutoCertificate            *bool             `json:"autoCertificate,omitempty"`
	VirtualNetworks            []VirtualNetwork  `json:"virtualNetworks"`
	Haproxy                    Haproxy           `json:"haproxy"`
	PoolHealthcheckGracePeriod *int32            `json:"poolHealthcheckGracePeriod,omitempty"`
	PoolHealthcheckInterval    *int32            `json:"poolHealthcheckInterval,omitempty"`
	PoolHealthcheckMaxFail     *int32            `json:"poolHealthcheckMaxFail,omitempty"`
	PoolHealthcheckTimeout     *int32            `json:"poolHealthcheckTimeout,omitempty"`
	CloudProvider              *CloudProvider    `json:"cloudProvider,omitempty"`
	Type                       string            `json:"type,omitempty"`
}

// Secret is a DC/OS secret materialised into the pool sandbox.
type Secret struct {
	Secret string `json:"secret"`
	File   string `json:"file"`
}

// VirtualNetwork is a CNI network the pool task joins.
type VirtualNetwork struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// CloudProvider is Edge-LB 1.4+'s cloud connector block (control plane).
type CloudProvider struct {
	AWS *AWSCloud `json:"aws,omitempty"`
}

// AWSCloud lists the NLBs Edge-LB's API server would manage.
type AWSCloud struct {
	ELBs []AWSELB `json:"elbs"`
}

// AWSELB is one cloud-connector load balancer.
type AWSELB struct {
	Name                string        `json:"name"`
	Type                string        `json:"type"`
	Internal            *bool         `json:"internal,omitempty"`
	Listeners           []AWSListener `json:"listeners"`
	Tags                []AWSTag      `json:"tags,omitempty"`
	Subnets             []string      `json:"subnets,omitempty"`
	ElasticIPs          []string      `json:"elasticIPs,omitempty"`
	AccessLogS3Location string        `json:"accessLogS3Location,omitempty"`
	DeletionProtection  *bool         `json:"deletionProtection,omitempty"`
	ARN                 string        `json:"arn,omitempty"`
}

// AWSListener is one NLB listener linked to a frontend by name.
type AWSListener struct {
	Port         int32   `json:"port"`
	Protocol     string  `json:"protocol,omitempty"`
	TLS          *AWSTLS `json:"tls,omitempty"`
	LinkFrontend string  `json:"linkFrontend"`
}

// AWSTLS is an NLB TLS listener's policy and ACM certificates.
type AWSTLS struct {
	Policy       string   `json:"policy,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
}

// AWSTag is a key/value tag.
type AWSTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Haproxy holds the data-plane part of the pool.
type Haproxy struct {
	Stats     Stats      `json:"stats"`
	Frontends []Frontend `json:"frontends"`
	Backends  []Backend  `json:"backends"`
}

// Stats is the stats/admin listener (default 0.0.0.0:9090).
type Stats struct {
	BindAddress string `json:"bindAddress"`
	BindPort    *int32 `json:"bindPort,omitempty"`
}

// Protocol is a frontend or backend protocol.
type Protocol string

// The protocols of the V2 schema.
const (
	HTTP  Protocol = "HTTP"
	HTTPS Protocol = "HTTPS"
	TCP   Protocol = "TCP"
	TLS   Protocol = "TLS"
)

// Frontend is one listener.
type Frontend struct {
	Name            string           `json:"name"`
	BindAddress     string           `json:"bindAddress"`
	BindPort        *int32           `json:"bindPort,omitempty"`
	BindModifier    string           `json:"bindModifier,omitempty"`
	Certificates    []string         `json:"certificates"`
	RedirectToHTTPS *RedirectToHTTPS `json:"redirectToHttps,omitempty"`
	MiscStrs        []string         `json:"miscStrs"`
	Protocol        Protocol         `json:"protocol"`
	LinkBackend     LinkBackend      `json:"linkBackend"`

	opts *FrontendOptions // from MiscStrs and BindModifier, set by Parse
}

// RedirectToHTTPS redirects (307) to https except for the listed matches.
type RedirectToHTTPS struct {
	Except []RedirectExcept `json:"except"`
}

// RedirectExcept is one exception: Host and path prefix, AND-ed.
type RedirectExcept struct {
	Host    string `json:"host,omitempty"`
	PathBeg string `json:"pathBeg,omitempty"`
}

// LinkBackend routes requests of a frontend to backends.
type LinkBackend struct {
	DefaultBackend string     `json:"defaultBackend,omitempty"`
	Map            []RouteMap `json:"map"`
}

// RouteMap is one routing rule: every set condition must hold.
type RouteMap struct {
	Backend string `json:"backend"`
	HostEq  string `json:"hostEq,omitempty"`
	HostReg string `json:"hostReg,omitempty"`
	PathBeg string `json:"pathBeg,omitempty"`
	PathEnd string `json:"pathEnd,omitempty"`
	PathReg string `json:"pathReg,omitempty"`

	hostRe, pathRe *regexp.Regexp // compiled HostReg and PathReg, set by Parse
}

// Backend is one group of servers.
type Backend struct {
	Name        string       `json:"name"`
	Protocol    Protocol     `json:"protocol"`
	Balance     string       `json:"balance"`
	CustomCheck *CustomCheck `json:"customCheck,omitempty"`
	MiscStrs    []string     `json:"miscStrs"`
	RewriteHTTP RewriteHTTP  `json:"rewriteHttp"`
	Services    []Service    `json:"services"`

	opts *backendOptions // from Balance, CustomCheck, MiscStrs, sticky; set by Parse
}

// CustomCheck selects an alternative health check.
type CustomCheck struct {
	HTTPChk        *bool  `json:"httpchk,omitempty"`
	HTTPChkMiscStr string `json:"httpchkMiscStr,omitempty"`
	SSLHelloChk    *bool  `json:"sslHelloChk,omitempty"`
	MiscStr        string `json:"miscStr,omitempty"`
}

// RewriteHTTP manipulates HTTP requests and responses.
type RewriteHTTP struct {
	Host     string          `json:"host,omitempty"`
	Path     *RewritePath    `json:"path,omitempty"`
	Request  RewriteRequest  `json:"request"`
	Response RewriteResponse `json:"response"`
	Sticky   *Sticky         `json:"sticky,omitempty"`
}

// RewritePath rewrites a path prefix.
type RewritePath struct {
	FromPath *string `json:"fromPath,omitempty"`
	ToPath   *string `json:"toPath,omitempty"`
}

// RewriteRequest are the request rewrite switches (all default true).
type RewriteRequest struct {
	Forwardfor                *bool `json:"forwardfor,omitempty"`
	XForwardedPort            *bool `json:"xForwardedPort,omitempty"`
	XForwardedProtoHTTPSIfTLS *bool `json:"xForwardedProtoHttpsIfTls,omitempty"`
	SetHostHeader             *bool `json:"setHostHeader,omitempty"`
	RewritePath               *bool `json:"rewritePath,omitempty"`
}

// RewriteResponse are the response rewrite switches.
type RewriteResponse struct {
	RewriteLocation *bool `json:"rewriteLocation,omitempty"`
}

// Sticky enables cookie stickiness.
type Sticky struct {
	Enabled   *bool  `json:"enabled,omitempty"`
	CustomStr string `json:"customStr,omitempty"`
}

// Service is one backend service selector.
type Service struct {
	Marathon MarathonSelector `json:"marathon"`
	Mesos    MesosSelector    `json:"mesos"`
	Endpoint Endpoint         `json:"endpoint"`

	server *ServerOptions // from Endpoint.Check and Endpoint.MiscStr, set by Parse
}

// MarathonSelector selects Marathon apps or pods.
type MarathonSelector struct {
	ServiceID            string `json:"serviceID,omitempty"`
	ServiceIDPattern     string `json:"serviceIDPattern,omitempty"`
	ContainerName        string `json:"containerName,omitempty"`
	ContainerNamePattern string `json:"containerNamePattern,omitempty"`

	serviceIDRe, containerNameRe *regexp.Regexp // compiled patterns, set by Parse
}

// MesosSelector selects Mesos frameworks and tasks.
type MesosSelector struct {
	FrameworkName        string `json:"frameworkName,omitempty"`
	FrameworkNamePattern string `json:"frameworkNamePattern,omitempty"`
	FrameworkID          string `json:"frameworkID,omitempty"`
	FrameworkIDPattern   string `json:"frameworkIDPattern,omitempty"`
	TaskName             string `json:"taskName,omitempty"`
	TaskNamePattern      string `json:"taskNamePattern,omitempty"`
	TaskID               string `json:"taskID,omitempty"`
	TaskIDPattern        string `json:"taskIDPattern,omitempty"`
}

// EndpointType says how a task's address is found.
type EndpointType string

// The endpoint types of the V2 schema.
const (
	AutoIP      EndpointType = "AUTO_IP"
	AgentIP     EndpointType = "AGENT_IP"
	ContainerIP EndpointType = "CONTAINER_IP"
	Address     EndpointType = "ADDRESS"
)

// Endpoint selects the address and port of each server.
type Endpoint struct {
	Type     EndpointType `json:"type"`
	PortName string       `json:"portName,omitempty"`
	Port     *int32       `json:"port,omitempty"`
	AllPorts *bool        `json:"allPorts,omitempty"`
	Address  string       `json:"address,omitempty"`
	Check    Check        `json:"check"`
	MiscStr  string       `json:"miscStr,omitempty"`
}

// Check enables the per-server health check.
type Check struct {
	Enabled   *bool  `json:"enabled,omitempty"`
	CustomStr string `json:"customStr,omitempty"`
}
