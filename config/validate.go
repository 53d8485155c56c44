package config

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Validation mirrors Edge-LB's API server (apiserver/models/v2_check.go and
// common_check.go of the 1.0-era source) and adds what edgeproxy needs
// because it binds listeners and runs health checks itself. Rules marked
// "edgeproxy" below are the additions.

// The patterns Edge-LB checks names against.
var (
	nameRe        = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	namespaceRe   = regexp.MustCompile(`^[a-z0-9](.*[a-z0-9])?$`)
	secretFileRe  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_-]*$`)
	certificateRe = regexp.MustCompile(`(^\$AUTOCERT$|^(\$ENVFILE|\$SECRETS)/[a-zA-Z0-9_-]+$)`)
)

const protocols = "HTTP, HTTPS, TCP, TLS"

func validProtocol(p Protocol) bool {
	return p == HTTP || p == HTTPS || p == TCP || p == TLS
}

// httpMode reports whether HAProxy would run the protocol in `mode http`.
func httpMode(p Protocol) bool { return p == HTTP || p == HTTPS }

type validator struct {
	errList
	p *Pool
}

func (v *validator) pool() {
	p := v.p
	switch p.APIVersion {
	case "V2":
	default:
		v.add("apiVersion", p.APIVersion, `is not a supported apiVersion (want "V2")`)
	}
	switch {
	case p.Name == "":
		v.add("name", "", "is required")
	case !nameRe.MatchString(p.Name):
		v.add("name", p.Name, "must match "+nameRe.String()+" (lower-case letters, digits and inner dashes)")
	}
	if ns := *p.Namespace; ns != "" {
		if !namespaceRe.MatchString(ns) {
			v.add("namespace", ns, "must match "+namespaceRe.String())
		} else {
			for _, seg := range strings.Split(ns, "/") {
				if !nameRe.MatchString(seg) {
					v.add("namespace", ns, fmt.Sprintf("has an invalid segment %q: each must match %s", seg, nameRe))
					break
				}
			}
		}
	}
	v.nonNegative("cpus", *p.CPUs)
	v.nonNegative("cpusAdminOverhead", *p.CPUsAdminOverhead)
	v.nonNegative("mem", float64(*p.Mem))
	v.nonNegative("memAdminOverhead", float64(*p.MemAdminOverhead))
	v.nonNegative("disk", float64(*p.Disk))
	v.nonNegative("count", float64(*p.Count))
	switch p.Type {
	case "", "static", "template-static", "template-dynamic":
	default:
		v.add("type", p.Type, "is not one of static, template-static, template-dynamic")
	}
	// swagger 1.2: minimum 1, and 2 for the timeout.
	v.atLeast("poolHealthcheckGracePeriod", *p.PoolHealthcheckGracePeriod, 1)
	v.atLeast("poolHealthcheckInterval", *p.PoolHealthcheckInterval, 1)
	v.atLeast("poolHealthcheckMaxFail", *p.PoolHealthcheckMaxFail, 1)
	v.atLeast("poolHealthcheckTimeout", *p.PoolHealthcheckTimeout, 2)

	seenPort := map[int32]bool{}
	for i, port := range p.Ports {
		path := index("ports", i)
		if port < 0 || port > 65535 {
			v.add(path, fmt.Sprint(port), "is out of range 0..65535")
		} else if seenPort[port] {
			v.add(path, fmt.Sprint(port), "is listed twice")
		}
		seenPort[port] = true
	}
	v.secrets()
	seenNet := map[string]bool{}
	for i, n := range p.VirtualNetworks {
		path := field(index("virtualNetworks", i), "name")
		if n.Name == "" {
			v.add(path, "", "is required")
		} else if seenNet[n.Name] {
			v.add(path, n.Name, "is listed twice")
		}
		seenNet[n.Name] = true
	}
	v.haproxy()
	v.cloudProvider()
}

func (v *validator) nonNegative(path string, x float64) {
	if x < 0 {
		v.add(path, fmt.Sprint(x), "must not be negative")
	}
}

func (v *validator) atLeast(path string, x, lo int32) {
	if x < lo {
		v.add(path, fmt.Sprint(x), fmt.Sprintf("must be at least %d", lo))
	}
}

func (v *validator) secrets() {
	names, files := map[string]bool{}, map[string]bool{}
	for i, s := range v.p.Secrets {
		path := index("secrets", i)
		switch {
		case s.Secret == "":
			v.add(field(path, "secret"), "", "is required")
		case names[s.Secret]:
			v.add(field(path, "secret"), s.Secret, "is listed twice")
		}
		names[s.Secret] = true
		switch {
		case s.File == "":
			v.add(field(path, "file"), "", "is required")
		case !secretFileRe.MatchString(s.File):
			v.add(field(path, "file"), s.File, "must match "+secretFileRe.String()+" (a plain file name)")
		case files[s.File]:
			v.add(field(path, "file"), s.File, "is listed twice")
		}
		files[s.File] = true
	}
}

func (v *validator) haproxy() {
	h := &v.p.Haproxy
	st := &h.Stats
	v.bindAddress("haproxy.stats.bindAddress", st.BindAddress)
	if port := *st.BindPort; port < 0 || port > 65535 {
		v.add("haproxy.stats.bindPort", fmt.Sprint(port), "is out of range 0..65535 (0 picks a dynamic port from the environment)")
	}

	backends := map[string]int{} // name -> index of the first backend with it
	for i := range h.Backends {
		if n := h.Backends[i].Name; n != "" {
			if _, dup := backends[n]; !dup {
				backends[n] = i
			}
		}
	}
	referenced := map[string]bool{}
	names := map[string]string{}
	ports := map[int32]string{}
	if port := *st.BindPort; port > 0 {
		ports[port] = "haproxy.stats"
	}
	for i := range h.Frontends {
		f := &h.Frontends[i]
		path := index("haproxy.frontends", i)
		if prev, dup := names[f.Name]; dup {
			v.add(field(path, "name"), f.Name, "is already the name of "+prev)
		} else {
			names[f.Name] = path
		}
		// Edge-LB rejects any repeated port; several dynamic (0) ports are
		// fine since Edge-LB 1.3.
		if port := *f.BindPort; port > 0 {
			if prev, dup := ports[port]; dup {
				v.add(field(path, "bindPort"), fmt.Sprint(port), "is already used by "+prev)
			} else {
				ports[port] = path
			}
		}
		v.frontend(path, f, backends)
		referenced[f.LinkBackend.DefaultBackend] = true
		for _, m := range f.LinkBackend.Map {
			referenced[m.Backend] = true
		}
	}
	seen := map[string]bool{}
	for i := range h.Backends {
		b := &h.Backends[i]
		path := index("haproxy.backends", i)
		switch {
		case b.Name == "":
			v.add(field(path, "name"), "", "is required")
		case seen[b.Name]:
			v.add(field(path, "name"), b.Name, "is already the name of "+index("haproxy.backends", backends[b.Name]))
		case !referenced[b.Name]:
			v.add(field(path, "name"), b.Name, "is not used by any frontend (Edge-LB requires every backend to be linked)")
		}
		seen[b.Name] = true
		v.backend(path, b)
	}
}

func (v *validator) bindAddress(path, addr string) {
	if i := strings.IndexAny(addr, "*[]"); i >= 0 {
		v.add(path, addr, fmt.Sprintf("must not contain %q (Edge-LB derives frontend names from it)", addr[i]))
	}
}

func (v *validator) frontend(path string, f *Frontend, backends map[string]int) {
	v.bindAddress(field(path, "bindAddress"), f.BindAddress)
	switch port := *f.BindPort; {
	case port == unsetPort:
		v.add(field(path, "bindPort"), "", "is required (0 picks a dynamic port from the environment)")
	case port < 0 || port > 65535:
		v.add(field(path, "bindPort"), fmt.Sprint(port), "is out of range 0..65535")
	}
	protoOK := v.protocol(field(path, "protocol"), f.Protocol)

	if f.Protocol == HTTPS || f.Protocol == TLS {
		if len(f.Certificates) == 0 {
			v.add(field(path, "certificates"), "", fmt.Sprintf("must not be empty for protocol %s", f.Protocol))
		}
		for i, c := range f.Certificates {
			if !certificateRe.MatchString(c) {
				v.add(index(field(path, "certificates"), i), c, "must be $AUTOCERT, $SECRETS/<file> or $ENVFILE/<file>")
			}
		}
	}
	if r := f.RedirectToHTTPS; r != nil {
		if protoOK && f.Protocol != HTTP {
			v.add(field(path, "redirectToHttps"), "", fmt.Sprintf("is only allowed with protocol HTTP, not %s", f.Protocol))
		}
		for i, e := range r.Except {
			p := index(field(path, "redirectToHttps.except"), i)
			if e.Host == "" && e.PathBeg == "" { // edgeproxy: an empty entry would match everything
				v.add(p, "", "needs host or pathBeg")
			}
			v.lowercase(field(p, "host"), e.Host, false)
		}
	}

	lb := field(path, "linkBackend")
	if d := f.LinkBackend.DefaultBackend; d != "" {
		v.link(field(lb, "defaultBackend"), d, f, backends)
	}
	for i := range f.LinkBackend.Map {
		m := &f.LinkBackend.Map[i]
		p := index(field(lb, "map"), i)
		if m.Backend == "" {
			v.add(field(p, "backend"), "", "is required")
		} else {
			v.link(field(p, "backend"), m.Backend, f, backends)
		}
		if m.HostEq == "" && m.HostReg == "" && m.PathBeg == "" && m.PathEnd == "" && m.PathReg == "" {
			v.add(p, "", "needs at least one condition (hostEq, hostReg, pathBeg, pathEnd, pathReg)")
		}
		v.lowercase(field(p, "hostEq"), m.HostEq, false)
		v.lowercase(field(p, "hostReg"), m.HostReg, true)
		if f.Protocol == TLS {
			// The TLS frontend only sees the SNI name of the ClientHello;
			// Edge-LB's template renders hostEq alone there and drops the
			// other conditions (Unsupported reports them).
			continue
		}
		m.hostRe = v.regexp(field(p, "hostReg"), m.HostReg, "(?i)")
		m.pathRe = v.regexp(field(p, "pathReg"), m.PathReg, "")
	}

	o := &FrontendOptions{}
	for i, s := range f.MiscStrs {
		v.raw(index(field(path, "miscStrs"), i), s, parseFrontendLine(s, o))
	}
	v.raw(field(path, "bindModifier"), f.BindModifier, parseBindModifier(f.BindModifier, o))
	f.opts = o
}

// link checks one reference from frontend f to a backend.
func (v *validator) link(path, name string, f *Frontend, backends map[string]int) {
	bi, ok := backends[name]
	if !ok {
		v.add(path, name, "is not the name of any backend")
		return
	}
	b := &v.p.Haproxy.Backends[bi]
	if !validProtocol(f.Protocol) || !validProtocol(b.Protocol) {
		return
	}
	// HAProxy refuses an HTTP frontend switching to a TCP backend. The
	// other way round it upgrades the stream to HTTP (HAProxy 2.0+, which
	// Edge-LB 1.4+ ships), and the Edge-LB docs use it (a TLS frontend with
	// HTTP backends in "configuring security").
	if httpMode(f.Protocol) && !httpMode(b.Protocol) {
		v.add(path, name, fmt.Sprintf("has protocol %s, but frontend protocol %s needs an HTTP or HTTPS backend", b.Protocol, f.Protocol))
	}
}

func (v *validator) protocol(path string, p Protocol) bool {
	switch {
	case p == "":
		v.add(path, "", "is required (one of "+protocols+")")
	case !validProtocol(p):
		v.add(path, string(p), "is not one of "+protocols)
	default:
		return true
	}
	return false
}

// lowercase enforces the reference's "must be all lowercase" for host
// matches. In a regexp, escapes such as \S are not letters of the host.
func (v *validator) lowercase(path, s string, regex bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if regex && c == '\\' {
			i++
			continue
		}
		if c >= 'A' && c <= 'Z' {
			v.add(path, s, "must be all lowercase")
			return
		}
	}
}

// regexp compiles a user pattern. HAProxy and Edge-LB use PCRE; edgeproxy
// uses Go's RE2 syntax, which lacks lookaround and backreferences.
func (v *validator) regexp(path, pattern, flags string) *regexp.Regexp {
	if pattern == "" {
		return nil
	}
	if _, err := regexp.Compile(pattern); err != nil {
		msg := "is not a valid regular expression: " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		var se *syntax.Error
		if errors.As(err, &se) && pcreOnly(se, pattern) {
			msg += " (edgeproxy uses Go RE2 syntax, not HAProxy's PCRE: lookaround, backreferences and possessive quantifiers are not available)"
		}
		v.addErr(path, pattern, msg, err)
		return nil
	}
	return regexp.MustCompile(flags + pattern)
}

// raw records a problem in a raw HAProxy string. The value is the offending
// word (the whole string when the problem is not one word); the path says
// which string.
func (v *validator) raw(path, s string, rerr *rawError) {
	if rerr == nil {
		return
	}
	value := rerr.value
	if value == "" {
		value = s
	}
	v.add(path, value, rerr.msg)
}

// pcreOnly reports whether a compile error comes from PCRE syntax that RE2
// lacks rather than from a plain mistake.
func pcreOnly(se *syntax.Error, pattern string) bool {
	switch se.Code {
	case syntax.ErrInvalidPerlOp, syntax.ErrInvalidEscape, syntax.ErrInvalidRepeatOp:
		return true
	case syntax.ErrInvalidNamedCapture: // lookbehind (?<= and (?<! parse as a bad (?<name>
		return strings.Contains(pattern, "(?<=") || strings.Contains(pattern, "(?<!")
	}
	return false
}
