// Package stats is edgeproxy's stats listener, the one Edge-LB pools run on
// haproxy.stats.bindAddress:bindPort (0.0.0.0:9090 by default). It keeps
// what tools built for HAProxy expect there: the stats page at
// /haproxy?stats, its CSV export (/haproxy?stats;csv) in HAProxy 2.6's exact
// column layout, the monitor URI /_haproxy_health_check that load balancers
// probe, /_haproxy_getconfig and /_haproxy_getpids; and it adds Prometheus
// metrics under HAProxy's own exporter names (/metrics), /healthz and
// /readyz.
//
// Nothing here costs the data path anything: every report reads the
// proxy's atomic counters when it is asked for, and rates come from a
// sampler that reads the same counters once per second on its own
// goroutine. snapshot.go holds the table that maps the proxy's counters to
// HAProxy's columns.
package stats
