package config

import "fmt"

// The documented defaults. Sources: the V2 swagger (edge-lb-v2.yaml
// `default:` blocks), the pool health-check defaults of edge-lb.swagger-1.2,
// and the V2 reference page for the frontend name.
const (
	DefaultAPIVersion        = "V2" // Edge-LB 1.5+: "defaults to V2 if it was not explicitly provided"
	DefaultNamespace         = "dcos-edgelb/pools"
	DefaultPackageName       = "edgelb-pool"
	DefaultRole              = "slave_public"
	DefaultCPUs              = 0.9
	DefaultCPUsAdminOverhead = 0.1
	DefaultMem               = 992
	DefaultMemAdminOverhead  = 32
	DefaultDisk              = 256
	DefaultCount             = 1
	DefaultConstraints       = "hostname:UNIQUE"
	DefaultBindAddress       = "0.0.0.0"
	DefaultStatsPort         = 9090
	DefaultBalance           = "roundrobin"

	DefaultPoolHealthcheckGracePeriod = 180 // seconds
	DefaultPoolHealthcheckInterval    = 12  // seconds
	DefaultPoolHealthcheckMaxFail     = 5
	DefaultPoolHealthcheckTimeout     = 60 // seconds

	// unsetPort is the swagger's sentinel for a frontend without bindPort
	// and for an endpoint without port.
	unsetPort = -1
)

// FrontendName is Edge-LB's name for a frontend without one.
func FrontendName(bindAddress string, bindPort int32) string {
	return fmt.Sprintf("frontend_%s_%d", bindAddress, bindPort)
}

func defStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func defPtr[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

func defSlice[T any](s *[]T) {
	if *s == nil {
		*s = []T{}
	}
}

// applyDefaults fills what the document left out. An empty string counts as
// absent for fields whose default is a non-empty string (role, bindAddress,
// balance, endpoint type, apiVersion): the swagger cannot tell the two apart
// either once a Go client has decoded the body.
//
// packageVersion is left as given: the swagger's "stub-universe" is a build
// placeholder and Edge-LB 1.2 asks users to remove the field. principal and
// secretName have no default (the installing service account is used).
func applyDefaults(p *Pool) {
	defStr(&p.APIVersion, DefaultAPIVersion)
	defPtr(&p.Namespace, DefaultNamespace)
	defStr(&p.PackageName, DefaultPackageName)
	defStr(&p.Role, DefaultRole)
	defPtr(&p.CPUs, DefaultCPUs)
	defPtr(&p.CPUsAdminOverhead, DefaultCPUsAdminOverhead)
	defPtr(&p.Mem, DefaultMem)
	defPtr(&p.MemAdminOverhead, DefaultMemAdminOverhead)
	defPtr(&p.Disk, DefaultDisk)
	defPtr(&p.Count, DefaultCount)
	defPtr(&p.Constraints, DefaultConstraints)
	defSlice(&p.Ports)
	defSlice(&p.Secrets)
	defSlice(&p.VirtualNetworks)
	defPtr(&p.AutoCertificate, false)
	defPtr(&p.PoolHealthcheckGracePeriod, DefaultPoolHealthcheckGracePeriod)
	defPtr(&p.PoolHealthcheckInterval, DefaultPoolHealthcheckInterval)
	defPtr(&p.PoolHealthcheckMaxFail, DefaultPoolHealthcheckMaxFail)
	defPtr(&p.PoolHealthcheckTimeout, DefaultPoolHealthcheckTimeout)

	h := &p.Haproxy
	defStr(&h.Stats.BindAddress, DefaultBindAddress)
	defPtr(&h.Stats.BindPort, DefaultStatsPort)
	defSlice(&h.Frontends)
	defSlice(&h.Backends)
	for i := range h.Frontends {
		frontendDefaults(&h.Frontends[i])
	}
	for i := range h.Backends {
		backendDefaults(&h.Backends[i])
	}
}

func frontendDefaults(f *Frontend) {
	defStr(&f.BindAddress, DefaultBindAddress)
	defPtr(&f.BindPort, unsetPort)
	if f.Name == "" {
		f.Name = FrontendName(f.BindAddress, *f.BindPort)
	}
	defSlice(&f.Certificates)
	defSlice(&f.MiscStrs)
	defSlice(&f.LinkBackend.Map)
	if f.RedirectToHTTPS != nil {
		defSlice(&f.RedirectToHTTPS.Except)
	}
}

func backendDefaults(b *Backend) {
	defStr(&b.Balance, DefaultBalance)
	defSlice(&b.MiscStrs)
	defSlice(&b.Services)
	rw := &b.RewriteHTTP
	if rw.Path != nil {
		defPtr(&rw.Path.FromPath, "")
		defPtr(&rw.Path.ToPath, "")
	}
	rq := &rw.Request
	defPtr(&rq.Forwardfor, true)
	defPtr(&rq.XForwardedPort, true)
	defPtr(&rq.XForwardedProtoHTTPSIfTLS, true)
	defPtr(&rq.SetHostHeader, true)
	defPtr(&rq.RewritePath, true)
	defPtr(&rw.Response.RewriteLocation, true)
	if rw.Sticky != nil {
		defPtr(&rw.Sticky.Enabled, true)
	}
	if c := b.CustomCheck; c != nil {
		defPtr(&c.HTTPChk, false)
		defPtr(&c.SSLHelloChk, false)
	}
	for i := range b.Services {
		e := &b.Services[i].Endpoint
		if e.Type == "" {
			e.Type = AutoIP
		}
		defPtr(&e.Port, unsetPort)
		defPtr(&e.AllPorts, false)
		defPtr(&e.Check.Enabled, true)
	}
}
