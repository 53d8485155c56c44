package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgeproxy/edgeproxy/config"
)

// The timeouts both proxies get. They are edgeproxy's defaults, passed to it
// explicitly as flags and written into HAProxy's config under the HAProxy
// name of each.
var proxyTimeouts = []struct {
	flag, haproxy string
	d             time.Duration
}{
	{"--timeout-connect", "timeout connect", 3 * time.Second},
	{"--timeout-client", "timeout client", 30 * time.Second},
	{"--timeout-server", "timeout server", 30 * time.Second},
	{"--timeout-http-request", "timeout http-request", 15 * time.Second},
	{"--timeout-tunnel", "timeout tunnel", 3600 * time.Second},
	{"--timeout-queue", "timeout queue", 30 * time.Second},
	{"--timeout-keep-alive", "timeout http-keep-alive", 65 * time.Second},
	// HAProxy has no idle timeout for pooled server connections; its
	// pool-purge-delay (closing idle ones when unused that long) is closest.
	{"--timeout-backend-idle", "default-server pool-purge-delay", 10 * time.Second},
}

// haproxyMaxConn is HAProxy's global maxconn: Edge-LB's 50000, or less when
// RLIMIT_NOFILE is lower than HAProxy needs for it (see run).
var haproxyMaxConn = 50000

// frontendMaxConn is raised above the default 10000 (Edge-LB's and
// edgeproxy's) on both proxies so that the 10,000 idle connection scenario
// and its warm-up requests fit.
const frontendMaxConn = 20000

// haproxyDuration formats d in the largest whole unit, as HAProxy writes it.
func haproxyDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts connections or c exits.
func waitListening(c *child, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if c.exited() {
			return fmt.Errorf("%s exited: %v: %s", c.name, c.err, lastLines(c.out.String(), 8))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %v: %s", c.name, addr, limit, lastLines(c.out.String(), 8))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Contents served by the backends.
const (
	mib          = 1 << 20
	pageMarker   = "Customer Application"
	smallPath    = "/"
	body1MPath   = "/1m.bin"
	body100MPath = "/100m.bin"
	uploadPrefix = "/upload/"
)

// customerPage is the seed's "Customer Application" page: nginx's own
// default index.html (read from the installed package at run time) with its
// title and heading renamed, as the Edge-LB pool example serves it.
func customerPage(nginxBin string) []byte {
	for _, p := range []string{"/usr/share/nginx/html/index.html", filepath.Join(filepath.Dir(filepath.Dir(nginxBin)), "share/nginx/html/index.html")} {
		if raw, err := os.ReadFile(p); err == nil && strings.Contains(string(raw), "Welcome to nginx!") {
			return []byte(strings.ReplaceAll(string(raw), "Welcome to nginx!", pageMarker))
		}
	}
	// A stand-in of the same size class when no stock page is installed.
	page := "<!DOCTYPE html>\n<html>\n<head>\n<title>" + pageMarker + "</title>\n</head>\n<body>\n<h1>" + pageMarker + "</h1>\n"
	for len(page) < 580 {
		page += "<p>This page is served by one of four backend servers.</p>\n"
	}
	return []byte(page + "</body>\n</html>\n")
}

// backends is one nginx process serving four backend servers.
type backends struct {
	dir     string
	ports   []int
	conf    string // nginx.conf text
	proc    *child
	pageLen int
}

// startBackends writes the content and config under dir and starts nginx.
//
// nginx runs as a single process (master_process off): one event loop for
// all four servers, equal for both proxies, and one pid to kill. Uploads go
// to a WebDAV PUT location: nginx reads the whole body into a temporary file
// and renames it into place before answering 201 or 204, so the body really
// is consumed (a plain "return 200" answers before reading the body and then
// discards it). Everything lives on tmpfs (/dev/shm when present), so the
// backend costs memory copies, not disk writes; the 100 MiB download is a
// sparse file.
func startBackends(nginxBin, dir string, n int) (*backends, error) {
	b := &backends{dir: dir}
	for _, d := range []string{"www", "up", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	page := customerPage(nginxBin)
	b.pageLen = len(page)
	if err := os.WriteFile(filepath.Join(dir, "www/index.html"), page, 0o644); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		size int64
	}{{body1MPath, mib}, {body100MPath, 100 * mib}} {
		fh, err := os.Create(filepath.Join(dir, "www", f.path))
		if err != nil {
			return nil, err
		}
		err = errors.Join(fh.Truncate(f.size), fh.Close())
		if err != nil {
			return nil, err
		}
	}
	for range n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		b.ports = append(b.ports, p)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `# Four backend servers for the edgeproxy/HAProxy benchmark.
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log error;
worker_rlimit_nofile 65536;
events {
    worker_connections 16384;
}
http {
    access_log off;
    types {
        text/html html;
    }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
`, dir)
	for i, p := range b.ports {
		fmt.Fprintf(&sb, `    server {
        listen 127.0.0.1:%d backlog=4096;
        root %s/www;
        add_header X-Served-By s%d;
        location %s {
            root %s/up;
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 200m;
            client_body_buffer_size 1m;
        }
    }
`, p, dir, i+1, uploadPrefix, dir)
	}
	sb.WriteString("}\n")
	b.conf = sb.String()
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(b.conf), 0o644); err != nil {
		return nil, err
	}
	c, err := startChild("nginx", nil, nginxBin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs/error.log"))
	if err != nil {
		return nil, err
	}
	b.proc = c
	for _, p := range b.ports {
		if err := waitListening(c, fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second); err != nil {
			c.stop()
			return nil, err
		}
	}
	return b, nil
}

func (b *backends) addrs() []string {
	var out []string
	for _, p := range b.ports {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out
}

// poolJSON turns the seed pool into the benchmark's: the seed's backend with
// four static ADDRESS endpoints (the nginx servers), free loopback ports for
// the frontend and the stats listener, and the frontend maxconn raised.
func poolJSON(seed []byte, servers []string, port, statsPort int) ([]byte, error) {
	var pool map[string]any
	if err := json.Unmarshal(seed, &pool); err != nil {
		return nil, fmt.Errorf("seed pool: %w", err)
	}
	h, ok := pool["haproxy"].(map[string]any)
	if !ok {
		return nil, errors.New("seed pool: no haproxy object")
	}
	fe, _ := h["frontends"].([]any)
	be, _ := h["backends"].([]any)
	st, _ := h["stats"].(map[string]any)
	if len(fe) != 1 || len(be) != 1 || st == nil {
		return nil, errors.New("seed pool: want one frontend, one backend and stats")
	}
	f := fe[0].(map[string]any)
	f["bindAddress"] = "127.0.0.1"
	f["bindPort"] = port
	f["miscStrs"] = []any{fmt.Sprintf("maxconn %d", frontendMaxConn)}
	st["bindAddress"] = "127.0.0.1"
	st["bindPort"] = statsPort
	var services []any
	for _, a := range servers {
		host, p, _ := net.SplitHostPort(a)
		pn, _ := strconv.Atoi(p)
		services = append(services, map[string]any{"endpoint": map[string]any{"type": "ADDRESS", "address": host, "port": pn}})
	}
	be[0].(map[string]any)["services"] = services
	return json.MarshalIndent(pool, "", "  ")
}

// haproxyConfig renders the HAProxy 2.6 equivalent of a benchmark pool, read
// through edgeproxy's own config parser so that both proxies get what the
// same pool JSON means: the frontend with its maxconn, round robin over the
// same servers with the same health checks, forwardfor and X-Forwarded-Port,
// Edge-LB's retries and redispatch, the same timeouts, keep-alive on both
// sides, and no logging (edgeproxy writes no access log).
func haproxyConfig(poolRaw []byte, threads int, reuse string) (string, error) {
	pool, err := config.Parse(poolRaw)
	if err != nil {
		return "", err
	}
	h := pool.Haproxy
	if len(h.Frontends) != 1 || len(h.Backends) != 1 {
		return "", errors.New("want one frontend and one backend")
	}
	fe, be := h.Frontends[0], h.Backends[0]
	bo := be.Options()
	var sb strings.Builder
	fmt.Fprintf(&sb, `# HAProxy equivalent of the benchmark pool %q (generated).
global
    nbthread %d
    maxconn %d
    # No "log" line: nothing is logged, as edgeproxy writes no access log.

defaults
    mode http
    option http-keep-alive
    http-reuse %s
`, pool.Name, threads, haproxyMaxConn, reuse)
	retries := bo.Retries
	if retries < 0 {
		retries = 3 // Edge-LB's defaults section, and edgeproxy's default
	}
	fmt.Fprintf(&sb, "    retries %d\n", retries)
	if bo.Redispatch == nil || *bo.Redispatch {
		sb.WriteString("    option redispatch\n")
	}
	for _, t := range proxyTimeouts {
		fmt.Fprintf(&sb, "    %s %s\n", t.haproxy, haproxyDuration(t.d))
	}
	fmt.Fprintf(&sb, `
listen stats
    bind %s:%d
    monitor-uri /_haproxy_health_check

frontend %s
    bind %s:%d
`, h.Stats.BindAddress, *h.Stats.BindPort, fe.Name, fe.BindAddress, *fe.BindPort)
	if mc := fe.Options().MaxConn; mc > 0 {
		fmt.Fprintf(&sb, "    maxconn %d\n", mc)
	}
	fmt.Fprintf(&sb, "    default_backend %s\n\nbackend %s\n    balance %s\n", fe.LinkBackend.DefaultBackend, be.Name, bo.Balance)
	rq := be.RewriteHTTP.Request
	if rq.Forwardfor == nil || *rq.Forwardfor {
		sb.WriteString("    option forwardfor\n")
	}
	if rq.XForwardedPort == nil || *rq.XForwardedPort {
		sb.WriteString("    http-request set-header X-Forwarded-Port %[dst_port]\n")
	}
	if rq.XForwardedProtoHTTPSIfTLS == nil || *rq.XForwardedProtoHTTPSIfTLS {
		sb.WriteString("    http-request add-header X-Forwarded-Proto https if { ssl_fc }\n")
	}
	for i := range be.Services {
		s := &be.Services[i]
		if s.Endpoint.Type != config.Address || s.Endpoint.Port == nil {
			return "", fmt.Errorf("service %d: want a static ADDRESS endpoint", i)
		}
		so := s.Server(&be)
		line := fmt.Sprintf("    server s%d %s:%d weight %d", i+1, s.Endpoint.Address, *s.Endpoint.Port, so.Weight)
		if so.Check.Enabled {
			c := so.Check
			line += fmt.Sprintf(" check inter %s rise %d fall %d", haproxyDuration(c.Inter), c.Rise, c.Fall)
		}
		sb.WriteString(line + "\n")
	}
	return sb.String(), nil
}

// edgeproxyArgs is edgeproxy's command line for a pool file, with every
// timeout given explicitly (the values written into HAProxy's config).
func edgeproxyArgs(bin, poolPath string) []string {
	// Logging policy matches HAProxy's config here: none.
	args := []string{bin, "run", "--config", poolPath, "--bind-address", "127.0.0.1", "--access-log", "off"}
	for _, t := range proxyTimeouts {
		args = append(args, t.flag, t.d.String())
	}
	return args
}
