package discovery_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

var customer = discovery.Selector{ServiceID: "/customer", PortName: "nginx-80"}

// backends starts n HTTP servers on loopback answering their index.
func backends(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, i) }))
		t.Cleanup(s.Close)
		out = append(out, s.Listener.Addr().String())
	}
	return out
}

func running(eps []discovery.Endpoint) []string {
	var out []string
	for _, e := range eps {
		if !e.Draining {
			out = append(out, net.JoinHostPort(e.Address, strconv.Itoa(e.Port)))
		}
	}
	slices.Sort(out)
	return out
}

func draining(eps []discovery.Endpoint) int {
	n := 0
	for _, e := range eps {
		if e.Draining {
			n++
		}
	}
	return n
}

// runningTasks returns host:port of the fake's TASK_RUNNING tasks.
func runningTasks(srv *marathontest.Server, app string) []string {
	var out []string
	for _, tk := range srv.Tasks(app) {
		if tk.State == marathontest.StateRunning {
			out = append(out, net.JoinHostPort(tk.Host, strconv.Itoa(tk.Ports[0])))
		}
	}
	slices.Sort(out)
	return out
}

// The seed app scaled 4 -> 8 -> 2 -> 4 through the fake, with every task
// pointing at a real backend.
func TestWatcherScale(t *testing.T) {
	leakCheck(t)
	bk := backends(t, 8)
	srv := startFake(t, marathontest.Options{KillDelay: 300 * time.Millisecond})
	if err := srv.AddApp(seedApp(t, 4), bk); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
	w := discovery.NewWatcher(c, fastWatcher(nil, nil))
	rec := newRecorder()
	w.Watch(customer, rec.fn)
	runWatcher(t, w)
	waitSynced(t, w)
	waitConnected(t, w)

	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	check := func(n int) {
		t.Helper()
		eps := rec.waitSet(t, fmt.Sprintf("%d running, none draining", n), func(eps []discovery.Endpoint) bool {
			return len(running(eps)) == n && draining(eps) == 0
		})
		if got, want := running(eps), runningTasks(srv, "/customer"); !slices.Equal(got, want) {
			t.Fatalf("endpoints %v, fake tasks %v", got, want)
		}
		for _, e := range eps {
			if !e.Healthy || e.AppID != "/customer" || e.PortName != "nginx-80" || e.Address != "127.0.0.1" {
				t.Errorf("endpoint %+v", e)
			}
			resp, err := hc.Get("http://" + net.JoinHostPort(e.Address, strconv.Itoa(e.Port)) + "/")
			if err != nil {
				t.Fatalf("backend %s:%d: %v", e.Address, e.Port, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	check(4)
	for _, n := range []int{8, 2, 4} {
		if _, err := srv.Scale("/customer", n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			rec.waitSet(t, "6 draining", func(eps []discovery.Endpoint) bool { return draining(eps) == 6 })
		}
		check(n)
	}
	sets := rec.all()
	for i, s := range sets {
		if len(s) == 0 {
			t.Errorf("set %d is empty", i)
		}
		if !slices.IsSortedFunc(s, func(a, b discovery.Endpoint) int {
			if a.TaskID != b.TaskID {
				return cmpStr(a.TaskID, b.TaskID)
			}
			return a.Port - b.Port
		}) {
			t.Errorf("set %d not sorted", i)
		}
		if i > 0 && slices.Equal(s, sets[i-1]) {
			t.Errorf("set %d delivered twice", i)
		}
	}
	if st := w.Status(); !st.Connected || st.Stale || !st.Synced || st.EventsReceived == 0 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Marathon goes away: the last set stays, one log line per state change,
// and the watcher converges once Marathon is back, without a restart.
func TestWatcherMarathonDownAndBack(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{KillDelay: time.Millisecond})
	if err := srv.AddApp(seedApp(t, 4), nil); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	clk := newClock()
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
	w := discovery.NewWatcher(c, fastWatcher(logs, clk))
	rec := newRecorder()
	w.Watch(customer, rec.fn)
	runWatcher(t, w)
	waitSynced(t, w)
	waitConnected(t, w)
	rec.waitSet(t, "4", func(eps []discovery.Endpoint) bool { return len(eps) == 4 })
	before := rec.count()

	srv.Stop()
	waitFor(t, "disconnect", func() bool { return !w.Status().Connected })
	if _, err := srv.Scale("/customer", 2); err != nil { // changes while away
		t.Fatal(err)
	}
	clk.Add(42 * time.Second)
	time.Sleep(300 * time.Millisecond) // ~10 reconnect attempts at 10-50 ms
	if rec.count() != before {
		t.Fatalf("callback while Marathon was down: %v", rec.last())
	}
	st := w.Status()
	if !st.Stale || st.Staleness != 42*time.Second || st.LastError == "" || st.Connected {
		t.Errorf("status while down %+v", st)
	}
	if n := logs.count("event stream down"); n != 1 {
		t.Errorf("%d 'event stream down' lines, want 1:\n%s", n, logs)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	eps := rec.waitSet(t, "2 after restart", func(eps []discovery.Endpoint) bool { return len(eps) == 2 })
	if got, want := running(eps), runningTasks(srv, "/customer"); !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	waitFor(t, "fresh status", func() bool { st := w.Status(); return st.Connected && !st.Stale && st.LastError == "" })
	if n := logs.count("event stream attached"); n != 2 {
		t.Errorf("%d 'attached' lines, want 2:\n%s", n, logs)
	}
}

// Marathon answers, but garbage: last good set kept, logged once, and the
// watcher recovers when the answers heal.
func TestWatcherGarbageAnswers(t *testing.T) {
	for _, fault := range []marathontest.Fault{marathontest.FaultGarbage, marathontest.FaultHTML, marathontest.FaultUnavailable} {
		t.Run(strconv.Itoa(int(fault)), func(t *testing.T) {
			leakCheck(t)
			srv := startFake(t, marathontest.Options{KillDelay: time.Millisecond})
			if err := srv.AddApp(seedApp(t, 3), nil); err != nil {
				t.Fatal(err)
			}
			logs := &logBuf{}
			c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
			w := discovery.NewWatcher(c, fastWatcher(logs, nil))
			rec := newRecorder()
			w.Watch(customer, rec.fn)
			runWatcher(t, w)
			waitConnected(t, w)
			rec.waitSet(t, "3", func(eps []discovery.Endpoint) bool { return len(eps) == 3 })
			before, fetched := rec.count(), appRequests(srv)

			srv.SetFault(fault)
			if _, err := srv.Scale("/customer", 1); err != nil { // events trigger fetches of garbage
				t.Fatal(err)
			}
			if fault == marathontest.FaultUnavailable {
				srv.DropEventStreams() // and the stream cannot come back
			}
			waitFor(t, "3 failed fetches", func() bool { return appRequests(srv) >= fetched+3 }, func() { t.Logf("status %+v\nlogs:\n%s", w.Status(), logs) })
			if rec.count() != before {
				t.Fatalf("callback on a failed fetch: %v", rec.last())
			}
			if n := logs.count("cannot sync from Marathon"); n != 1 {
				t.Errorf("%d 'cannot sync' lines after %d failed fetches, want 1:\n%s", n, appRequests(srv)-fetched, logs)
			}
			if st := w.Status(); !st.Stale || st.LastError == "" {
				t.Errorf("status %+v", st)
			}

			srv.SetFault(marathontest.FaultNone)
			rec.waitSet(t, "1 after healing", func(eps []discovery.Endpoint) bool { return len(eps) == 1 })
			waitFor(t, "recovered log", func() bool { return logs.count("sync from Marathon recovered") == 1 })
		})
	}
}

// After a leader failover the health results are gone: the previous health
// holds for HealthGrace, then the tasks count as unhealthy.
func TestWatcherHealthGraceAfterFailover(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{})
	def := seedApp(t, 2)
	def.HealthChecks = []marathontest.HealthCheck{{Protocol: "MESOS_HTTP", Path: "/"}}
	if err := srv.AddApp(def, nil); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
	opts := fastWatcher(nil, clk)
	opts.HealthGrace = time.Minute
	w := discovery.NewWatcher(c, opts)
	rec := newRecorder()
	w.Watch(customer, rec.fn)
	runWatcher(t, w)
	waitConnected(t, w)
	healthy := func(eps []discovery.Endpoint) (n int) {
		for _, e := range eps {
			if e.Healthy {
				n++
			}
		}
		return n
	}
	rec.waitSet(t, "2 healthy", func(eps []discovery.Endpoint) bool { return len(eps) == 2 && healthy(eps) == 2 })
	tasks := srv.Tasks("/customer")
	if err := srv.SetTaskHealth(tasks[0].ID, false); err != nil {
		t.Fatal(err)
	}
	eps := rec.waitSet(t, "1 unhealthy", func(eps []discovery.Endpoint) bool { return healthy(eps) == 1 })
	for _, e := range eps {
		if e.Healthy == (e.TaskID == tasks[0].ID) {
			t.Errorf("endpoint %+v", e)
		}
	}
	before, syncs := rec.count(), w.Status().Syncs

	srv.SimulateLeaderFailover()
	waitFor(t, "resync after failover", func() bool { st := w.Status(); return st.Connected && st.Syncs > syncs })
	time.Sleep(100 * time.Millisecond)
	if rec.count() != before {
		t.Fatalf("health flapped after failover: %v", rec.last())
	}

	clk.Add(61 * time.Second)
	srv.Emit("status_update_event", map[string]any{"appId": "/customer", "taskId": tasks[1].ID, "taskStatus": "TASK_RUNNING"})
	rec.waitSet(t, "grace over: no results, unhealthy", func(eps []discovery.Endpoint) bool { return len(eps) == 2 && healthy(eps) == 0 })
	for _, tk := range tasks {
		if err := srv.SetTaskHealth(tk.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	rec.waitSet(t, "healthy again", func(eps []discovery.Endpoint) bool { return healthy(eps) == 2 })
}

// Events about apps nobody watches cost no fetch; a burst costs few; a
// never-ending stream of events is still fetched every MaxDelay.
func TestWatcherEventFiltering(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{KillDelay: time.Millisecond})
	if err := srv.AddApp(seedApp(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	other := seedApp(t, 1)
	other.ID = "/other"
	if err := srv.AddApp(other, nil); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
	opts := fastWatcher(nil, nil)
	opts.Debounce, opts.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	w := discovery.NewWatcher(c, opts)
	rec := newRecorder()
	w.Watch(customer, rec.fn)
	runWatcher(t, w)
	waitSynced(t, w)
	waitConnected(t, w)
	time.Sleep(50 * time.Millisecond)

	fetched, events := appRequests(srv), w.Status().EventsReceived
	for n := 2; n <= 4; n++ {
		if _, err := srv.Scale("/other", n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "events", func() bool { return w.Status().EventsReceived >= events+6 })
	time.Sleep(50 * time.Millisecond)
	if got := appRequests(srv); got != fetched {
		t.Errorf("%d fetches for events about an unwatched app", got-fetched)
	}

	fetched = appRequests(srv)
	for i := range 50 {
		srv.Emit("status_update_event", map[string]any{"appId": "/customer", "taskId": fmt.Sprint("customer.", i), "taskStatus": "TASK_RUNNING"})
	}
	time.Sleep(150 * time.Millisecond)
	if got := appRequests(srv) - fetched; got < 1 || got > 2 {
		t.Errorf("burst of 50 events: %d fetches, want 1 or 2", got)
	}

	fetched = appRequests(srv)
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond { // an event every 5 ms, never quiet for 20 ms
		srv.Emit("deployment_success", map[string]any{"id": "x"})
		time.Sleep(5 * time.Millisecond)
	}
	if got := appRequests(srv) - fetched; got < 3 || got > 12 {
		t.Errorf("600 ms of continuous events: %d fetches, want about one per MaxDelay (100 ms)", got)
	}
}

func TestWatcherWatchCancelAndResync(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{KillDelay: time.Millisecond})
	if err := srv.AddApp(seedApp(t, 2), nil); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}})
	opts := fastWatcher(nil, nil)
	opts.ResyncInterval = 50 * time.Millisecond
	w := discovery.NewWatcher(c, opts)
	if err := func() error { // Run twice
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = w.Run(ctx)
		return w.Run(ctx)
	}(); err == nil {
		t.Fatal("second Run: no error")
	}

	w2 := discovery.NewWatcher(c, opts)
	runWatcher(t, w2)
	waitSynced(t, w2)
	// Registered after the first sync: delivered from the cached snapshot.
	late := newRecorder()
	cancel := w2.Watch(customer, late.fn)
	late.waitSet(t, "late watch", func(eps []discovery.Endpoint) bool { return len(eps) == 2 })
	// A selector that matches nothing gets an empty set, once.
	none := newRecorder()
	w2.Watch(discovery.Selector{ServiceIDPattern: regexp.MustCompile("^/nothing$")}, none.fn)
	none.waitSet(t, "empty set", func(eps []discovery.Endpoint) bool { return eps != nil && len(eps) == 0 })

	fetched := appRequests(srv)
	waitFor(t, "periodic resyncs", func() bool { return appRequests(srv) >= fetched+3 })
	if none.count() != 1 || late.count() != 1 {
		t.Errorf("unchanged sets delivered again: %d, %d", none.count(), late.count())
	}

	cancel()
	n := late.count()
	if _, err := srv.Scale("/customer", 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "resync", func() bool { return appRequests(srv) >= fetched+6 })
	if late.count() != n {
		t.Errorf("callback after cancel")
	}
}

// An app that stops decoding keeps its previous endpoints; an app that is
// gone empties its set.
func TestWatcherBrokenAppKeepsPreviousState(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	body := `{"apps":[{"id":"/web","portDefinitions":[{"port":0,"name":"http"}],"tasks":[{"id":"web.1","host":"127.0.0.1","state":"TASK_RUNNING","ports":[31001]}]}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/apps" {
			http.Error(w, "no events here", http.StatusNotFound)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	set := func(b string) { mu.Lock(); body = b; mu.Unlock() }
	logs := &logBuf{}
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL}})
	opts := fastWatcher(logs, nil)
	opts.ResyncInterval = 20 * time.Millisecond
	w := discovery.NewWatcher(c, opts)
	rec := newRecorder()
	w.Watch(discovery.Selector{ServiceID: "/web", PortName: "http"}, rec.fn)
	runWatcher(t, w)
	rec.waitSet(t, "web.1", func(eps []discovery.Endpoint) bool { return len(eps) == 1 })

	set(`{"apps":[{"id":"/web","instances":"two","tasks":[]}]}`)
	waitFor(t, "skip logged", func() bool { return logs.count(`skipping app "/web"`) > 0 })
	time.Sleep(100 * time.Millisecond)
	if rec.count() != 1 {
		t.Errorf("broken app changed the set: %v", rec.last())
	}
	if n := logs.count(`skipping app "/web"`); n != 1 {
		t.Errorf("%d skip lines over several fetches, want 1:\n%s", n, logs)
	}
	set(`{"apps":[]}`)
	rec.waitSet(t, "app gone", func(eps []discovery.Endpoint) bool { return len(eps) == 0 })
}
