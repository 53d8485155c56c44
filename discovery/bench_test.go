package discovery_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// BenchmarkEventToUpdate measures the latency from a change in (fake)
// Marathon to the watch callback carrying it: the health flip of one task
// emits health_status_changed_event, the watcher debounces, re-fetches
// /v2/apps (4 apps' worth of tasks here) and delivers the changed set. It
// reports p50 and p99 in milliseconds.
func BenchmarkEventToUpdate(b *testing.B) {
	for _, tc := range []struct {
		name     string
		debounce time.Duration
	}{{"debounce=default", 0}, {"debounce=1ms", time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) { benchEventToUpdate(b, tc.debounce) })
	}
}

func benchEventToUpdate(b *testing.B, debounce time.Duration) {
	srv := marathontest.New(marathontest.Options{})
	if err := srv.Start(""); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, id := range []string{"/customer", "/a", "/b", "/c"} {
		n := 4
		def := marathontest.AppDefinition{ID: id, Instances: &n,
			Networks:     []marathontest.Network{{Mode: "container/bridge"}},
			Container:    &marathontest.Container{Type: "DOCKER", PortMappings: []marathontest.PortMapping{{ContainerPort: 80, Name: "nginx-80"}}},
			HealthChecks: []marathontest.HealthCheck{{Protocol: "MESOS_HTTP", Path: "/"}}}
		if err := srv.AddApp(def, nil); err != nil {
			b.Fatal(err)
		}
	}
	c, err := discovery.NewClient(discovery.ClientOptions{URLs: []string{srv.URL()}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w := discovery.NewWatcher(c, discovery.WatcherOptions{Debounce: debounce})
	got := make(chan time.Time, 16)
	w.Watch(customer, func([]discovery.Endpoint) { got <- time.Now() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-w.Synced()
	for deadline := time.Now().Add(5 * time.Second); !w.Status().Connected; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("event stream not connected")
		}
	}
	<-got
	task := srv.Tasks("/customer")[0].ID
	alive := true
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		alive = !alive
		start := time.Now()
		if err := srv.SetTaskHealth(task, alive); err != nil {
			b.Fatal(err)
		}
		select {
		case t := <-got:
			lat = append(lat, t.Sub(start))
		case <-time.After(5 * time.Second):
			b.Fatal("no update within 5s")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
