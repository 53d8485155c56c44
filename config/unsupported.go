package config

// gap is one feature that Parse accepts but edgeproxy does not act on yet.
// Exactly one of the finder functions is set; it reports the offending
// value and whether the feature is in use. When edgeproxy implements a
// feature, delete its row.
type gap struct {
	field string // path relative to the scope
	msg   string
	pool  func(*Pool) (string, bool)
	fe    func(*Frontend) (string, bool)
	be    func(*Backend) (string, bool)
	svc   func(*Service) (string, bool)
}

// gaps is the single list of unsupported features, in document order within
// each scope.
var gaps = []gap{
	{field: "autoCertificate", msg: "is not acted on: edgeproxy does not generate the self-signed $AUTOCERT certificate",
		pool: func(p *Pool) (string, bool) { return "", *p.AutoCertificate }},
	{field: "virtualNetworks", msg: "is not acted on: joining virtual networks is the pool scheduler's job",
		pool: func(p *Pool) (string, bool) { return "", len(p.VirtualNetworks) > 0 }},
	{field: "cloudProvider", msg: "is not acted on: edgeproxy does not create or manage load balancers from the pool; its own ELB registration is configured separately",
		pool: func(p *Pool) (string, bool) { return "", p.CloudProvider != nil }},

	{field: "protocol", msg: "is not supported yet: HTTPS frontends (TLS termination)",
		fe: func(f *Frontend) (string, bool) { return string(f.Protocol), f.Protocol == HTTPS }},
	{field: "protocol", msg: "is not supported yet: TLS frontends (SNI routing without termination)",
		fe: func(f *Frontend) (string, bool) { return string(f.Protocol), f.Protocol == TLS }},
	{field: "linkBackend.map", msg: "conditions other than hostEq are ignored on a TLS frontend, as in Edge-LB's template: only the SNI name is seen",
		fe: func(f *Frontend) (string, bool) {
			if f.Protocol != TLS {
				return "", false
			}
			for _, m := range f.LinkBackend.Map {
				for _, v := range []string{m.HostReg, m.PathBeg, m.PathEnd, m.PathReg} {
					if v != "" {
						return v, true
					}
				}
			}
			return "", false
		}},
	{field: "redirectToHttps", msg: "is not supported yet: redirects to HTTPS",
		fe: func(f *Frontend) (string, bool) { return "", f.RedirectToHTTPS != nil }},

	{field: "protocol", msg: "is not supported yet: HTTPS backends (TLS to the servers)",
		be: func(b *Backend) (string, bool) { return string(b.Protocol), b.Protocol == HTTPS }},
	{field: "customCheck.sslHelloChk", msg: "is not supported yet: SSL hello health checks",
		be: func(b *Backend) (string, bool) { return "", b.CustomCheck != nil && *b.CustomCheck.SSLHelloChk }},
	{field: "rewriteHttp.path", msg: "is not supported yet: path prefix rewriting",
		be: func(b *Backend) (string, bool) {
			rw := b.RewriteHTTP
			return "", rw.Path != nil && *rw.Request.RewritePath && httpMode(b.Protocol)
		}},
	{field: "rewriteHttp.sticky", msg: "is not supported yet: cookie stickiness",
		be: func(b *Backend) (string, bool) { return "", b.Options().Sticky != nil }},

	{field: "marathon.containerName", msg: "is not supported yet: selecting a container of a Marathon pod",
		svc: func(s *Service) (string, bool) { return s.Marathon.ContainerName, s.Marathon.ContainerName != "" }},
	{field: "marathon.containerNamePattern", msg: "is not supported yet: selecting a container of a Marathon pod",
		svc: func(s *Service) (string, bool) {
			return s.Marathon.ContainerNamePattern, s.Marathon.ContainerNamePattern != ""
		}},
	{field: "mesos", msg: "is not supported yet: Mesos framework and task selectors (discovery reads Marathon only)",
		svc: func(s *Service) (string, bool) { return "", s.Mesos != (MesosSelector{}) }},
}

// Unsupported lists the fields of a parsed pool that edgeproxy accepts but
// does not act on yet, in document order. They are warnings: the rest of
// the pool works without them. The result is empty for a pool that uses
// only supported features.
func (p *Pool) Unsupported() []*FieldError {
	var out []*FieldError
	add := func(path string, g gap, value string) {
		out = append(out, &FieldError{Path: field(path, g.field), Value: value, Msg: g.msg})
	}
	for _, g := range gaps {
		if g.pool != nil {
			if val, ok := g.pool(p); ok {
				add("", g, val)
			}
		}
	}
	for i := range p.Haproxy.Frontends {
		f := &p.Haproxy.Frontends[i]
		for _, g := range gaps {
			if g.fe != nil {
				if val, ok := g.fe(f); ok {
					add(index("haproxy.frontends", i), g, val)
				}
			}
		}
	}
	for i := range p.Haproxy.Backends {
		b := &p.Haproxy.Backends[i]
		bp := index("haproxy.backends", i)
		for _, g := range gaps {
			if g.be != nil {
				if val, ok := g.be(b); ok {
					add(bp, g, val)
				}
			}
		}
		for j := range b.Services {
			s := &b.Services[j]
			for _, g := range gaps {
				if g.svc != nil {
					if val, ok := g.svc(s); ok {
						add(index(field(bp, "services"), j), g, val)
					}
				}
			}
		}
	}
	return out
}
