package discovery_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// The seed app behind a fake Marathon: the watcher delivers its endpoints,
// then the new set after a scale-up.
func ExampleWatcher() {
	fake := marathontest.New(marathontest.Options{})
	if err := fake.Start("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer fake.Close()
	def, _ := marathontest.ParseAppDefinition([]byte(`{"id": "/customer", "instances": 2,
		"container": {"type": "DOCKER", "docker": {"image": "nginx"},
			"portMappings": [{"containerPort": 80, "hostPort": 0, "name": "nginx-80"}]},
		"networks": [{"mode": "container/bridge"}]}`))
	_ = fake.AddApp(def, []string{"127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"})

	c, _ := discovery.NewClient(discovery.ClientOptions{URLs: []string{fake.URL()}})
	defer c.Close()
	w := discovery.NewWatcher(c, discovery.WatcherOptions{})
	sets := make(chan []discovery.Endpoint, 8)
	w.Watch(discovery.Selector{ServiceID: "/customer", PortName: "nginx-80"}, func(eps []discovery.Endpoint) { sets <- eps })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	print := func(eps []discovery.Endpoint) {
		var addrs []string
		for _, e := range eps {
			addrs = append(addrs, net.JoinHostPort(e.Address, strconv.Itoa(e.Port)))
		}
		slices.Sort(addrs)
		fmt.Println(addrs)
	}
	print(<-sets)
	// Even if the event stream is not attached yet, its attach resyncs.
	_, _ = fake.Scale("/customer", 3)
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case eps := <-sets:
			if len(eps) == 3 {
				print(eps)
				done = true
			}
		case <-timeout:
			fmt.Println("timed out")
			done = true
		}
	}
	// Output:
	// [127.0.0.1:8081 127.0.0.1:8082]
	// [127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:8083]
}
