package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// The seed scenario, embedded: Edge-LB's "Highly-available load balancing
// on AWS" tutorial, its app and its pool, unchanged.
var (
	//go:embed seed/multi-lb-config.json
	seedPool []byte
	//go:embed seed/customer.json
	seedApp []byte
)

// customerPage is what the tutorial's nginx serves after its sed: nginx's
// welcome page with the title replaced.
const customerPage = `<!DOCTYPE html>
<html>
<head>
<title>Customer Application</title>
</head>
<body>
<h1>Customer Application</h1>
<p>Served by task %s.</p>
</body>
</html>
`

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgeproxy demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addrs := fs.String("addresses", "127.0.0.1,127.0.0.2", "")
	marathonAddr := fs.String("marathon-address", "127.0.0.1:8080", "")
	spare := fs.Int("servers", 16, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := newLogger("text", stderr)

	// Local servers standing in for the app's tasks. The fake Marathon
	// hands them to tasks as it launches them (scaling up to -servers).
	var servers []string
	for range *spare {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "edgeproxy demo: %v\n", err)
			return 1
		}
		addr := ln.Addr().String()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, customerPage, addr)
		})}
		go srv.Serve(ln)
		defer srv.Close()
		servers = append(servers, addr)
	}

	m := marathontest.New(marathontest.Options{})
	if err := m.Start(*marathonAddr); err != nil {
		fmt.Fprintf(stderr, "edgeproxy demo: fake Marathon on %s: %v (pass --marathon-address 127.0.0.1:0 for any free port)\n", *marathonAddr, err)
		return 1
	}
	defer m.Close()
	app, err := marathontest.ParseAppDefinition(seedApp)
	if err == nil {
		err = m.AddApp(app, servers)
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeproxy demo: app %s: %v\n", "/customer", err)
		return 1
	}

	var f runFlags
	rfs := newRunFlagSet(&f, io.Discard)
	if err := rfs.Parse(nil); err != nil {
		return 2
	}
	f.marathon = m.URL()

	var pools []*config.Pool
	for _, ip := range strings.Split(*addrs, ",") {
		p, err := config.Parse(seedPool)
		if err != nil {
			fmt.Fprintf(stderr, "edgeproxy demo: seed pool: %v\n", err)
			return 1
		}
		config.ApplyBindAddress(p, strings.TrimSpace(ip))
		pools = append(pools, p)
	}
	results := make([]int, len(pools))
	var wg, serving sync.WaitGroup
	for i, p := range pools {
		wg.Add(1)
		serving.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			results[i] = runPool(ctx, p, &f, log.With("instance", p.Haproxy.Stats.BindAddress), stderr,
				func() { once.Do(serving.Done) })
			once.Do(serving.Done)
			if results[i] != 0 {
				stop() // one instance failed: stop the demo
			}
		}()
	}
	serving.Wait()
	if ctx.Err() != nil {
		wg.Wait()
		for _, r := range results {
			if r != 0 {
				return r
			}
		}
		return 0
	}
	fmt.Fprintf(stdout, `
edgeproxy demo: the seed scenario on this machine
  Marathon (fake):   %[1]s   app /customer, 4 tasks, port name nginx-80
  pool instance 1:   http://%[2]s:80/      stats http://%[2]s:9090/haproxy?stats
  pool instance 2:   http://%[3]s:80/      stats http://%[3]s:9090/haproxy?stats

Try:
  curl -i http://%[2]s/                       # the Customer Application, round robin over the tasks
  curl http://%[2]s:9090/_haproxy_health_check
  curl -X PUT -H 'Content-Type: application/json' -d '{"instances": 8}' %[1]s/v2/apps/customer
                                                # scale as "dcos marathon app update" does; the pool follows
  curl %[1]s/v2/apps/customer/tasks           # the tasks Marathon runs now
Ctrl-C stops everything.
`, m.URL(), strings.TrimSpace(pools[0].Haproxy.Stats.BindAddress), strings.TrimSpace(pools[len(pools)-1].Haproxy.Stats.BindAddress))
	wg.Wait()
	for _, r := range results {
		if r != 0 {
			return r
		}
	}
	return 0
}
