package config

import (
	"fmt"
	"strings"
)

func (v *validator) backend(path string, b *Backend) {
	v.protocol(field(path, "protocol"), b.Protocol)

	o := &backendOptions{BackendOptions: BackendOptions{Retries: -1}}
	bal, draws, rerr := parseBalance(b.Balance)
	v.raw(field(path, "balance"), b.Balance, rerr)
	o.Balance, o.RandomDraws = bal, draws

	// The order is the template's: customCheck, then miscStrs; the last
	// setting wins, as in HAProxy.
	if c := b.CustomCheck; c != nil {
		cp := field(path, "customCheck")
		hc, rerr := parseHTTPChkString(c.HTTPChkMiscStr)
		v.raw(field(cp, "httpchkMiscStr"), c.HTTPChkMiscStr, rerr)
		if *c.HTTPChk && rerr == nil {
			o.httpCheck = hc
		}
		if *c.HTTPChk && *c.SSLHelloChk {
			v.add(field(cp, "sslHelloChk"), "", "cannot be combined with httpchk: a backend has one check type")
		}
		v.raw(field(cp, "miscStr"), c.MiscStr, parseBackendLine(c.MiscStr, o))
	}
	for i, s := range b.MiscStrs {
		v.raw(index(field(path, "miscStrs"), i), s, parseBackendLine(s, o))
	}
	if o.expectStatus != 0 {
		if o.httpCheck == nil {
			v.add(field(path, "miscStrs"), "", "has `http-check expect` without an HTTP check (set customCheck.httpchk or `option httpchk`)")
		} else {
			hc := *o.httpCheck
			hc.ExpectStatus = o.expectStatus
			o.httpCheck = &hc
		}
	}

	rw := &b.RewriteHTTP
	if rp := rw.Path; rp != nil {
		// Edge-LB 1.0 required both to end with "/" or neither. The later
		// docs (how-to-tasks/path-based-routing) exempt toPath "" and "/",
		// and their own path-routing example uses "/nginx" -> "/".
		from, to := *rp.FromPath, *rp.ToPath
		if to != "" && to != "/" && strings.HasSuffix(from, "/") != strings.HasSuffix(to, "/") {
			v.add(field(path, "rewriteHttp.path"), "", fmt.Sprintf("fromPath %q and toPath %q must both end with \"/\" or neither", from, to))
		}
	}
	if st := rw.Sticky; st != nil {
		sp := field(path, "rewriteHttp.sticky")
		opts := &StickyOptions{Cookie: DefaultStickyCookie, Indirect: true, NoCache: true}
		if st.CustomStr != "" {
			var rerr *rawError
			if opts, rerr = parseSticky(st.CustomStr); rerr != nil {
				v.raw(field(sp, "customStr"), st.CustomStr, rerr)
			}
		}
		// Edge-LB renders stickiness for HTTP and HTTPS backends only.
		if *st.Enabled && httpMode(b.Protocol) {
			o.Sticky = opts
		}
	}

	if len(b.Services) == 0 {
		v.add(field(path, "services"), "", "must have at least 1 service")
	}
	for i := range b.Services {
		v.service(index(field(path, "services"), i), &b.Services[i])
	}
	b.opts = o
}

// parseHTTPChkString reads customCheck.httpchkMiscStr, the arguments of
// `option httpchk`.
func parseHTTPChkString(s string) (*HTTPCheck, *rawError) {
	words, rerr := tokenize(s)
	if rerr != nil {
		return nil, rerr
	}
	return parseHTTPChk(words)
}

func (v *validator) service(path string, s *Service) {
	e := &s.Endpoint
	ep := field(path, "endpoint")
	switch e.Type {
	case AutoIP, AgentIP, ContainerIP, Address:
	default:
		v.add(field(ep, "type"), string(e.Type), "is not one of AUTO_IP, AGENT_IP, CONTAINER_IP, ADDRESS")
	}
	port := *e.Port
	if port != unsetPort && (port < 1 || port > 65535) {
		v.add(field(ep, "port"), fmt.Sprint(port), "is out of range 1..65535 (or -1 for the discovered port)")
	}
	if e.Type == Address {
		if e.Address == "" {
			v.add(field(ep, "address"), "", "is required for type ADDRESS")
		}
		if port == unsetPort {
			v.add(field(ep, "port"), "", "is required for type ADDRESS")
		}
	} else {
		if e.Address != "" {
			v.add(field(ep, "address"), e.Address, "is only allowed with type ADDRESS")
		}
		if e.PortName == "" && !*e.AllPorts && port == unsetPort {
			v.add(ep, "", "needs portName, port or allPorts: true to pick the task's port")
		}
	}

	m := &s.Marathon
	mp := field(path, "marathon")
	m.serviceIDRe = v.regexp(field(mp, "serviceIDPattern"), m.ServiceIDPattern, "")
	m.containerNameRe = v.regexp(field(mp, "containerNamePattern"), m.ContainerNamePattern, "")
	ms := &s.Mesos
	sp := field(path, "mesos")
	for _, pat := range []struct{ name, val string }{
		{"frameworkNamePattern", ms.FrameworkNamePattern},
		{"frameworkIDPattern", ms.FrameworkIDPattern},
		{"taskNamePattern", ms.TaskNamePattern},
		{"taskIDPattern", ms.TaskIDPattern},
	} {
		v.regexp(field(sp, pat.name), pat.val, "")
	}
	if e.Type != Address {
		marathon := m.ServiceID != "" || m.ServiceIDPattern != ""
		framework := ms.FrameworkName != "" || ms.FrameworkNamePattern != "" || ms.FrameworkID != "" || ms.FrameworkIDPattern != ""
		task := ms.TaskName != "" || ms.TaskNamePattern != "" || ms.TaskID != "" || ms.TaskIDPattern != ""
		switch {
		case marathon:
		case framework && !task:
			v.add(field(sp, "taskName"), "", "is required with a framework selector (taskName, taskNamePattern, taskID or taskIDPattern)")
		case task && !framework:
			v.add(field(sp, "frameworkName"), "", "is required with a task selector (frameworkName, frameworkNamePattern, frameworkID or frameworkIDPattern)")
		case !framework && !task:
			v.add(path, "", "needs marathon.serviceID, marathon.serviceIDPattern or a mesos framework and task selector (or endpoint.type ADDRESS)")
		}
	}

	o := defaultServerOptions()
	o.Check.Enabled = *e.Check.Enabled
	// Edge-LB renders customStr only after `check`, so it has no effect when
	// the check is disabled; it is still validated.
	custom := o
	rerr := parseServerOptions(e.Check.CustomStr, &custom)
	v.raw(field(ep, "check.customStr"), e.Check.CustomStr, rerr)
	if o.Check.Enabled && rerr == nil {
		o = custom
	}
	v.raw(field(ep, "miscStr"), e.MiscStr, parseServerOptions(e.MiscStr, &o))
	s.server = &o
}

func (v *validator) cloudProvider() {
	cp := v.p.CloudProvider
	if cp == nil || cp.AWS == nil {
		return
	}
	frontends := map[string]bool{}
	for _, f := range v.p.Haproxy.Frontends {
		frontends[f.Name] = true
	}
	for i, elb := range cp.AWS.ELBs {
		path := index("cloudProvider.aws.elbs", i)
		if elb.Name == "" {
			v.add(field(path, "name"), "", "is required")
		}
		for j, l := range elb.Listeners {
			lp := index(field(path, "listeners"), j)
			if l.Port < 1 || l.Port > 65535 {
				v.add(field(lp, "port"), fmt.Sprint(l.Port), "is out of range 1..65535")
			}
			switch {
			case l.LinkFrontend == "":
				v.add(field(lp, "linkFrontend"), "", "is required")
			case !frontends[l.LinkFrontend]:
				v.add(field(lp, "linkFrontend"), l.LinkFrontend, "is not the name of any frontend")
			}
		}
	}
}
