// Command edgeproxy runs one Edge-LB pool instance: it reads an Edge-LB V2
// pool configuration, discovers the backends' servers, and proxies traffic
// to them. See `edgeproxy help`.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate", "lb-config":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "edgeproxy %s\n", version)
		return 0
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "edgeproxy: unknown command %q\n\n%s", args[0], usage)
	return 2
}

const usage = `NAME
    edgeproxy - Edge-LB pool instance: a native L7 load balancer replacing HAProxy

SYNOPSIS
    edgeproxy run --config FILE [--bind-address IP] [--marathon URL[,URL...]] [options]
    edgeproxy validate FILE
    edgeproxy demo [--base-address IP]
    edgeproxy version
    edgeproxy help

DESCRIPTION
    edgeproxy runs as one instance of an Edge-LB pool. It reads the pool's
    Edge-LB V2 configuration unchanged (the JSON given to "dcos edgelb
    create"), binds every frontend and the stats listener, finds the servers
    of every backend (static ADDRESS endpoints, or Marathon apps by ID and
    port name), and forwards traffic to them.

    Settings that are edgeproxy's own (timeouts, limits, Marathon access)
    are flags; every flag can also be given as an environment variable named
    EDGEPROXY_ followed by the flag name in upper case with dashes as
    underscores (--grace-period is EDGEPROXY_GRACE_PERIOD). A flag on the
    command line wins over the environment. Raw HAProxy strings in the pool
    (miscStrs, timeouts) win over both for their frontend or backend.

COMMANDS
    run       Run one pool instance until SIGTERM or SIGINT, then drain:
              stop accepting, answer requests in flight (with
              "Connection: close"), close idle connections politely, and
              exit when all are done or the grace period ends.
    validate  Parse and validate FILE. Prints the effective configuration
              with every default filled in and exits 0, or prints every
              error with its JSON path and exits 1. Fields edgeproxy accepts
              but does not act on are printed as warnings on stderr.
    demo      Run the seed scenario on this machine: a fake Marathon with the
              /customer app (4 tasks), four local "Customer Application"
              servers and two pool instances on 127.0.0.1 and 127.0.0.2.
    version   Print the version.

RUN OPTIONS
    --config FILE             Edge-LB V2 pool configuration (JSON).
    --bind-address IP         Bind every frontend and the stats listener to
                              IP instead of their bindAddress.
    --marathon URLS           Comma-separated Marathon URLs, for services that
                              select Marathon apps.
    --marathon-user USER, --marathon-password PASSWORD
                              HTTP basic credentials for Marathon.
    --dcos-uid UID, --dcos-private-key FILE, --dcos-login-url URL
                              DC/OS service account login (RS256 JWT).
    --marathon-ca FILE        CA bundle for an HTTPS Marathon.
    --grace-period DURATION   How long draining may take (default 30s).
    --startup-timeout D       How long to wait for every backend's first
                              server list (Marathon sync, DNS) before
                              serving anyway (default 30s). Listeners are
                              bound at once: early clients wait, not fail.
    --timeout-connect D       Connecting to a server (default 3s).
    --timeout-client D        Client inactivity (default 30s).
    --timeout-server D        Server inactivity (default 30s).
    --timeout-http-request D  Receiving a complete request head (default 15s).
    --timeout-tunnel D        WebSocket/upgrade inactivity (default 1h).
    --timeout-keep-alive D    Idle client keep-alive connection (default 65s,
                              above the 60s idle timeout of AWS ALB and CLB).
    --timeout-backend-idle D  Idle pooled backend connection (default 10s).
    --max-requests-per-conn N Close a client connection after N requests
                              (default 0: no limit).
    --max-header-size N       Largest request head in bytes (default 16384,
                              as HAProxy's tune.bufsize; larger ones get
                              431).
    --park-idle-after DURATION
                              A keep-alive client connection idle this long
                              is parked: held in one epoll set with no
                              goroutine or buffer until its next request
                              (default 250ms; 0 never parks; Linux).
    --trim-memory-after DURATION
                              The first interval this long with at most 100
                              requests, connections opened and closed a
                              second, after a busier one, and ending with
                              no request in flight, drops the buffer pools
                              and gives free memory back to the system
                              (default 30s; 0 never).
    --batch-writes MODE       auto (default), on or off: send the responses
                              of one Go scheduler round together, from one
                              goroutine. auto: on when GOMAXPROCS is 1 at
                              start-up.
    --log-format FORMAT       json (default) or text, for edgeproxy's own
                              log on stderr.
    --access-log DEST         One line per request: stdout (default), stderr,
                              a file path (appended), or off. Lines are never
                              written on the request path; when the writer
                              falls behind they are dropped and counted
                              (edgeproxy_access_log_dropped_total).
    --access-log-format F     json (default) or httplog (HAProxy's format).
    --debug-address ADDR      Serve Go's profiler (/debug/pprof/) on ADDR,
                              e.g. 127.0.0.1:6060. Off by default.

AWS OPTIONS
    --aws-clb NAME            Register with this Classic Load Balancer
                              (repeatable; EDGEPROXY_AWS_CLB takes a
                              comma-separated list).
    --aws-target-group ARN    Register with this ALB/NLB target group
                              (repeatable; EDGEPROXY_AWS_TARGET_GROUP).
    --aws-port N              Port to register (default: the first
                              frontend's port).
    --trust-forwarded-for CIDRS
                              Networks of HTTP load balancers (ALB, CLB HTTP
                              listeners; repeatable, comma-separated) whose
                              X-Forwarded-For is believed: the address they
                              appended is the client for "source" balancing
                              and the access log. X-Forwarded-For still gets
                              the peer appended.
    --lazy-close D            After deregistration, how long responses say
                              "Connection: close" before the listeners stop
                              (default 5s).
    Registration happens once the instance is ready (listeners bound, first
    Marathon sync done) and is repaired if someone removes it. On SIGTERM:
    the health check fails (except behind an NLB), edgeproxy deregisters,
    serves until the balancer reports the target drained or the
    deregistration delay passes, closes connections lazily, then stops. Give
    Mesos a kill grace period above the deregistration delay plus
    --lazy-close (see docs/aws.md). The AWS SDK's standard configuration
    applies (AWS_REGION, credentials chain, AWS_ENDPOINT_URL,
    AWS_EC2_METADATA_SERVICE_ENDPOINT).

EXIT STATUS
    0 on success or after a clean drain, 1 on a configuration or runtime
    error, 2 on a usage error.

FILES
    docs/config.md describes how the pool configuration is read, docs/
    architecture.md how a request flows.
`
