package marathontest_test

import (
	"bufio"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

func start(t *testing.T, opts marathontest.Options) *marathontest.Server {
	t.Helper()
	srv := marathontest.New(opts)
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t *testing.T, method, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, b := do(t, "GET", url, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type wireTask struct {
	ID          string `json:"id"`
	Host        string `json:"host"`
	State       string `json:"state"`
	Ports       []int  `json:"ports"`
	IPAddresses []struct {
		IPAddress string `json:"ipAddress"`
	} `json:"ipAddresses"`
	ServicePorts []int `json:"servicePorts"`
}

type wireApp struct {
	ID        string `json:"id"`
	Instances int    `json:"instances"`
	Container struct {
		PortMappings []struct {
			ContainerPort int    `json:"containerPort"`
			HostPort      *int   `json:"hostPort"`
			ServicePort   int    `json:"servicePort"`
			Name          string `json:"name"`
		} `json:"portMappings"`
	} `json:"container"`
	Deployments []struct{ ID string } `json:"deployments"`
	Tasks       []wireTask            `json:"tasks"`
}

func appTasks(t *testing.T, srv *marathontest.Server) []wireTask {
	var v struct{ Apps []wireApp }
	getJSON(t, srv.URL()+"/v2/apps?embed=apps.tasks", &v)
	if len(v.Apps) != 1 {
		t.Fatalf("%d apps", len(v.Apps))
	}
	return v.Apps[0].Tasks
}

func countState(ts []wireTask, state string) int {
	n := 0
	for _, t := range ts {
		if t.State == state {
			n++
		}
	}
	return n
}

var taskIDRe = regexp.MustCompile(`^customer\.[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The seed tutorial, driven over HTTP the way the dcos CLI does it.
func TestSeedAppLifecycle(t *testing.T) {
	srv := start(t, marathontest.Options{KillDelay: 50 * time.Millisecond})
	seed, err := os.ReadFile("testdata/customer.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "POST", srv.URL()+"/v2/apps", string(seed), "Content-Type", "application/json")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", srv.URL()+"/v2/apps", string(seed)); resp.StatusCode != 409 {
		t.Errorf("duplicate create: %d", resp.StatusCode)
	}
	var one struct{ App wireApp }
	getJSON(t, srv.URL()+"/v2/apps/customer", &one)
	pm := one.App.Container.PortMappings
	if len(pm) != 1 || pm[0].Name != "nginx-80" || pm[0].ContainerPort != 80 || pm[0].HostPort == nil || *pm[0].HostPort != 0 || pm[0].ServicePort < 10000 {
		t.Errorf("port mappings %+v", pm)
	}
	tasks := one.App.Tasks
	if len(tasks) != 4 || countState(tasks, "TASK_RUNNING") != 4 {
		t.Fatalf("tasks %+v", tasks)
	}
	ports := map[int]bool{}
	for _, tk := range tasks {
		if !taskIDRe.MatchString(tk.ID) {
			t.Errorf("task id %q", tk.ID)
		}
		if tk.Host != "127.0.0.1" || len(tk.Ports) != 1 || tk.Ports[0] < 31000 || tk.Ports[0] > 32000 || ports[tk.Ports[0]] {
			t.Errorf("task host/ports %q %v", tk.Host, tk.Ports)
		}
		ports[tk.Ports[0]] = true
		if len(tk.IPAddresses) != 1 || !strings.HasPrefix(tk.IPAddresses[0].IPAddress, "127.0.2.") {
			t.Errorf("bridge ip %+v", tk.IPAddresses)
		}
		if len(tk.ServicePorts) != 0 {
			t.Errorf("embedded task has servicePorts %v", tk.ServicePorts)
		}
	}

	// dcos marathon app update /customer instances=8
	resp, body = do(t, "PUT", srv.URL()+"/v2/apps/customer", `{"instances": 8}`, "Content-Type", "application/json")
	var dep struct{ DeploymentID, Version string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &dep) != nil || dep.DeploymentID == "" || dep.Version == "" {
		t.Fatalf("scale: %d %s", resp.StatusCode, body)
	}
	if ts := appTasks(t, srv); countState(ts, "TASK_RUNNING") != 8 {
		t.Fatalf("after scale to 8: %d running", countState(ts, "TASK_RUNNING"))
	}
	do(t, "PUT", srv.URL()+"/v2/apps/customer", `{"instances": 2}`)
	if ts := appTasks(t, srv); len(ts) != 8 || countState(ts, "TASK_KILLING") != 6 {
		t.Fatalf("scale down: want 6 of 8 killing, got %d of %d", countState(ts, "TASK_KILLING"), len(ts))
	}
	waitFor(t, "killed tasks to go", func() bool { return len(appTasks(t, srv)) == 2 })

	// Kill without scale: TASK_KILLING, replaced.
	victim := appTasks(t, srv)[0].ID
	resp, body = do(t, "DELETE", srv.URL()+"/v2/apps/customer/tasks/"+victim, "")
	var killed struct{ Task wireTask }
	if resp.StatusCode != 200 || json.Unmarshal(body, &killed) != nil || killed.Task.ID != victim || killed.Task.State != "TASK_KILLING" {
		t.Fatalf("kill: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "replacement", func() bool {
		ts := appTasks(t, srv)
		return len(ts) == 2 && countState(ts, "TASK_RUNNING") == 2 && ts[0].ID != victim && ts[1].ID != victim
	})
	// Kill with scale=true: a deployment, one instance left.
	victim = appTasks(t, srv)[0].ID
	resp, body = do(t, "DELETE", srv.URL()+"/v2/apps/customer/tasks/"+victim+"?scale=true", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "deploymentId") {
		t.Fatalf("kill+scale: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "scale down by kill", func() bool { return len(appTasks(t, srv)) == 1 })

	var all struct{ Tasks []wireTask }
	getJSON(t, srv.URL()+"/v2/tasks", &all)
	if len(all.Tasks) != 1 || len(all.Tasks[0].ServicePorts) != 1 || all.Tasks[0].ServicePorts[0] != pm[0].ServicePort {
		t.Errorf("/v2/tasks %+v, want servicePorts [%d]", all.Tasks, pm[0].ServicePort)
	}
	if resp, body := do(t, "GET", srv.URL()+"/v2/apps/nope", ""); resp.StatusCode != 404 || !strings.Contains(string(body), `App '/nope' does not exist`) {
		t.Errorf("missing app: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, "DELETE", srv.URL()+"/v2/apps/customer", "")
	if resp.StatusCode != 200 {
		t.Fatalf("delete app: %d", resp.StatusCode)
	}
	waitFor(t, "app deletion", func() bool {
		var v struct{ Apps []wireApp }
		getJSON(t, srv.URL()+"/v2/apps", &v)
		return len(v.Apps) == 0
	})
}

// Raw bytes of /v2/events: Jetty's framing, heartbeat and Accept rule.
func TestEventStreamWire(t *testing.T) {
	srv := start(t, marathontest.Options{Heartbeat: 20 * time.Millisecond, KillDelay: time.Millisecond})
	for _, accept := range []string{"*/*", "text/event-stream; charset=utf-8", "text/event-stream, text/plain", ""} {
		if resp, _ := do(t, "GET", srv.URL()+"/v2/events", "", "Accept", accept); resp.StatusCode != 405 {
			t.Errorf("Accept %q: %d, want 405", accept, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", srv.URL()+"/v2/events?event_type=status_update_event", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream;charset=utf-8" {
		t.Errorf("content type %q", ct)
	}
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != -1 || !resp.Close {
		t.Errorf("want an unchunked body ended by close: te=%v cl=%d close=%v", resp.TransferEncoding, resp.ContentLength, resp.Close)
	}
	r := bufio.NewReader(resp.Body)
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil || string(head) != "\r\n\r\n" {
		t.Fatalf("first bytes %q (%v), want two heartbeats", head, err)
	}
	def, _ := marathontest.ParseAppDefinition([]byte(`{"id": "/a", "portDefinitions": [{"port": 0, "name": "http"}]}`))
	if err := srv.AddApp(def, nil); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for !strings.Contains(got.String(), "TASK_RUNNING") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(line)
	}
	s := strings.TrimLeft(got.String(), "\r\n")
	if !regexp.MustCompile(`^event: status_update_event\r\ndata: \{[^\r\n]*"taskStatus":"TASK_STAGING"[^\r\n]*\}\r\n\r\n(\r\n)*event: status_update_event\r\ndata: \{[^\r\n]*TASK_RUNNING`).MatchString(s) {
		t.Errorf("stream bytes %q", s)
	}
	if strings.Contains(s, "instance_changed_event") || strings.Contains(s, "api_post_event") {
		t.Errorf("event_type filter let through other events: %q", s)
	}
	srv.DropEventStreams()
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Errorf("stream end: %v", err)
	}
}

func TestBasicAuth(t *testing.T) {
	srv := start(t, marathontest.Options{User: "edge", Password: "s3cret"})
	resp, _ := do(t, "GET", srv.URL()+"/v2/apps", "")
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("no creds: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("edge:s3cret"))
	bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("edge:nope"))
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", "", "Authorization", bad); resp.StatusCode != 401 {
		t.Errorf("bad creds: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", "", "Authorization", good); resp.StatusCode != 200 {
		t.Errorf("good creds: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL()+"/ping", ""); resp.StatusCode != 200 {
		t.Errorf("/ping needs no auth: %d", resp.StatusCode)
	}
	if srv.Unauthorized() != 2 {
		t.Errorf("unauthorized count %d", srv.Unauthorized())
	}
}

var (
	keyOnce        sync.Once
	key1, key2     *rsa.PrivateKey
	errKeyGenerate error
)

func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		if key1, errKeyGenerate = rsa.GenerateKey(rand.Reader, 2048); errKeyGenerate == nil {
			key2, errKeyGenerate = rsa.GenerateKey(rand.Reader, 2048)
		}
	})
	if errKeyGenerate != nil {
		t.Fatal(errKeyGenerate)
	}
	return key1, key2
}

func jwt(t *testing.T, key *rsa.PrivateKey, alg string, claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	s := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(s))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return s + "." + enc.EncodeToString(sig)
}

func TestServiceAccountLogin(t *testing.T) {
	k1, k2 := keys(t)
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := start(t, marathontest.Options{ServiceAccounts: map[string]*rsa.PublicKey{"edgeproxy": &k1.PublicKey}, TokenTTL: time.Hour, Now: clock})
	login := func(body string) (int, string) {
		resp, b := do(t, "POST", srv.URL()+"/acs/api/v1/auth/login", body, "Content-Type", "application/json")
		var v struct{ Token string }
		_ = json.Unmarshal(b, &v)
		return resp.StatusCode, v.Token
	}
	exp := now.Add(5 * time.Minute).Unix()
	body := func(uid, tok string) string {
		b, _ := json.Marshal(map[string]string{"uid": uid, "token": tok})
		return string(b)
	}
	for name, b := range map[string]string{
		"other key":        body("edgeproxy", jwt(t, k2, "RS256", map[string]any{"uid": "edgeproxy", "exp": exp})),
		"unknown uid":      body("nobody", jwt(t, k1, "RS256", map[string]any{"uid": "nobody", "exp": exp})),
		"uid mismatch":     body("edgeproxy", jwt(t, k1, "RS256", map[string]any{"uid": "other", "exp": exp})),
		"over ten minutes": body("edgeproxy", jwt(t, k1, "RS256", map[string]any{"uid": "edgeproxy", "exp": now.Add(time.Hour).Unix()})),
		"expired":          body("edgeproxy", jwt(t, k1, "RS256", map[string]any{"uid": "edgeproxy", "exp": now.Add(-time.Minute).Unix()})),
		"alg HS256":        body("edgeproxy", jwt(t, k1, "HS256", map[string]any{"uid": "edgeproxy", "exp": exp})),
		"not a jwt":        body("edgeproxy", "abc"),
	} {
		if code, tok := login(b); code != 401 || tok != "" {
			t.Errorf("%s: %d %q, want 401", name, code, tok)
		}
	}
	code, tok := login(body("edgeproxy", jwt(t, k1, "RS256", map[string]any{"uid": "edgeproxy", "exp": exp})))
	if code != 200 || tok == "" {
		t.Fatalf("login: %d", code)
	}
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", "", "Authorization", "token="+tok); resp.StatusCode != 200 {
		t.Errorf("with token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "acsjwt" {
		t.Errorf("without token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", "", "Authorization", "token="+tok); resp.StatusCode != 401 {
		t.Errorf("expired token: %d", resp.StatusCode)
	}
	if srv.Logins() != 1 || srv.FailedLogins() != 7 {
		t.Errorf("logins %d, failed %d", srv.Logins(), srv.FailedLogins())
	}
}

func TestStandbyRedirects(t *testing.T) {
	leader := start(t, marathontest.Options{})
	standby := start(t, marathontest.Options{Leader: leader})
	resp, _ := do(t, "GET", standby.URL()+"/v2/apps?embed=apps.tasks", "")
	if resp.StatusCode != 307 || resp.Header.Get("Location") != leader.URL()+"/v2/apps?embed=apps.tasks" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var l struct{ Leader string }
	getJSON(t, standby.URL()+"/v2/leader", &l)
	if l.Leader != leader.Addr() {
		t.Errorf("leader %q, want %q", l.Leader, leader.Addr())
	}
	s302 := start(t, marathontest.Options{Leader: leader, RedirectStatus: 302, RedirectBase: "http://leader.test:1"})
	if resp, _ := do(t, "GET", s302.URL()+"/v2/events", ""); resp.StatusCode != 302 || resp.Header.Get("Location") != "http://leader.test:1/v2/events" {
		t.Errorf("302 redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestFaults(t *testing.T) {
	srv := start(t, marathontest.Options{})
	srv.SetFault(marathontest.FaultUnavailable)
	if resp, _ := do(t, "GET", srv.URL()+"/v2/apps", ""); resp.StatusCode != 503 {
		t.Errorf("unavailable: %d", resp.StatusCode)
	}
	srv.SetFault(marathontest.FaultGarbage)
	resp, body := do(t, "GET", srv.URL()+"/v2/apps", "")
	var v any
	if resp.StatusCode != 200 || json.Unmarshal(body, &v) == nil {
		t.Errorf("garbage: %d %s decodes", resp.StatusCode, body)
	}
	srv.SetFault(marathontest.FaultHTML)
	if resp, body := do(t, "GET", srv.URL()+"/v2/apps", ""); resp.StatusCode != 200 || !strings.HasPrefix(string(body), "<html>") {
		t.Errorf("html: %d %s", resp.StatusCode, body)
	}
	srv.SetFault(marathontest.FaultNone)
	url := srv.URL()
	srv.Stop()
	if _, err := http.Get(url + "/ping"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("stopped: err = %v, want connection refused", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, "GET", url+"/v2/apps", ""); resp.StatusCode != 200 {
		t.Errorf("after restart: %d", resp.StatusCode)
	}
	if n := len(srv.Requests()); n != 4 { // the refused one never arrived
		t.Errorf("%d requests recorded, want 4", n)
	}
}

// Tasks can be pointed at real local backends, which go back to the pool
// when their task is gone.
func TestBackendsHook(t *testing.T) {
	srv := start(t, marathontest.Options{KillDelay: time.Millisecond})
	var backends []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		backends = append(backends, ln.Addr().String())
	}
	def, _ := marathontest.ParseAppDefinition([]byte(`{"id": "/web", "instances": 2, "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "admin"}]}`))
	if err := srv.AddApp(def, backends); err != nil {
		t.Fatal(err)
	}
	addrs := func() map[string]bool {
		out := map[string]bool{}
		for _, tk := range srv.Tasks("/web") {
			if tk.State == marathontest.StateRunning {
				out[net.JoinHostPort(tk.Host, strconv.Itoa(tk.Ports[0]))] = true
				if len(tk.Ports) != 2 || tk.Ports[1] < 31000 {
					t.Errorf("second port %v", tk.Ports)
				}
			}
		}
		return out
	}
	if a := addrs(); !a[backends[0]] || !a[backends[1]] {
		t.Fatalf("tasks %v, want %v", a, backends)
	}
	if _, err := srv.Scale("/web", 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scale down", func() bool { return len(srv.Tasks("/web")) == 1 })
	if _, err := srv.Scale("/web", 3); err != nil {
		t.Fatal(err)
	}
	a := addrs()
	if len(a) != 3 || !a[backends[0]] || !a[backends[1]] {
		t.Errorf("after scale up %v: freed backend not reused", a)
	}
}

func TestTLS(t *testing.T) {
	srv := start(t, marathontest.Options{TLS: true})
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") {
		t.Fatalf("url %q", srv.URL())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CertPEM()) {
		t.Fatal("CertPEM")
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := http.Get(srv.URL() + "/ping"); err == nil {
		t.Error("untrusted certificate accepted")
	}
}
