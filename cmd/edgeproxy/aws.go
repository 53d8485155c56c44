package main

import (
	"context"
	"fmt"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeproxy/edgeproxy/elb"
)

// listFlag is a repeatable flag; each value may also be a comma-separated
// list (the form the environment variables take).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// newRegistrar builds the ELB registrar from the --aws-* flags, or returns
// nil when none is set. The AWS SDK's standard configuration applies:
// region, credential chain, AWS_ENDPOINT_URL and its service-specific
// variants, AWS_EC2_METADATA_SERVICE_ENDPOINT.
func (in *instance) newRegistrar(ctx context.Context) (*elb.Registrar, error) {
	f := in.flags
	if len(f.awsCLBs) == 0 && len(f.awsTargetGroups) == 0 {
		return nil, nil
	}
	var targets []elb.Target
	for _, name := range f.awsCLBs {
		targets = append(targets, elb.CLB{Name: name})
	}
	for _, arn := range f.awsTargetGroups {
		targets = append(targets, elb.TargetGroup{ARN: arn})
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	port := f.awsPort
	if port == 0 && len(in.frontends) > 0 {
		port = in.frontends[0].port
	}
	r, err := elb.NewRegistrar(cfg, elb.Options{
		Targets: targets,
		Port:    port,
		Logf:    logfFor(in.log.With("component", "elb")),
	})
	if err != nil {
		return nil, fmt.Errorf("aws: %w", err)
	}
	return r, nil
}

// extraMetrics are the edgeproxy_* series HAProxy has no equivalent for:
// discovery staleness and activity, server set swaps, AWS registration.
func (in *instance) extraMetrics() []prometheus.Collector {
	var cs []prometheus.Collector
	if w := in.watcher; w != nil {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_discovery_stale",
				Help: "1 while the Marathon endpoint sets may lag behind Marathon."},
				func() float64 { return b2f(w.Status().Stale) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_discovery_staleness_seconds",
				Help: "How long the Marathon endpoint sets have been stale."},
				func() float64 { return w.Status().Staleness.Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_marathon_event_stream_connected",
				Help: "1 while the Marathon event stream is attached."},
				func() float64 { return b2f(w.Status().Connected) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_marathon_events_total",
				Help: "Events read from Marathon's event stream."},
				func() float64 { return float64(w.Status().EventsReceived) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_marathon_syncs_total",
				Help: "Successful fetches of Marathon's apps."},
				func() float64 { return float64(w.Status().Syncs) }),
		)
	}
	for _, be := range in.order {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_backend_server_set_swaps_total",
			Help: "Server sets swapped into the backend.", ConstLabels: prometheus.Labels{"proxy": be.Name}},
			func() float64 { return float64(be.Stats.Swaps.Load()) }))
	}
	if l := in.accessLog; l != nil {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_access_log_written_total",
				Help: "Access log lines written."}, func() float64 { return float64(l.Written()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_access_log_dropped_total",
				Help: "Access log lines dropped because the writer fell behind or failed."}, func() float64 { return float64(l.Dropped()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_access_log_truncated_total",
				Help: "Access log lines whose URI was cut at 1 KiB."}, func() float64 { return float64(l.Truncated()) }),
		)
	}
	if r := in.registrar; r != nil {
		for _, st := range r.Status() {
			target := st.Target
			find := func() elb.TargetStatus {
				for _, s := range r.Status() {
					if s.Target == target {
						return s
					}
				}
				return elb.TargetStatus{}
			}
			labels := prometheus.Labels{"target": target}
			cs = append(cs,
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_aws_target_registered",
					Help: "1 while this instance is registered with the balancer target.", ConstLabels: labels},
					func() float64 { return b2f(find().Registered) }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeproxy_aws_target_permanent_error",
					Help: "1 while registration fails with an error retrying cannot fix.", ConstLabels: labels},
					func() float64 { return b2f(find().Permanent) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeproxy_aws_api_errors_total",
					Help: "Failed AWS API calls for this target.", ConstLabels: labels},
					func() float64 { return float64(find().Errors) }),
			)
		}
	}
	return cs
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
