package discovery_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientBasicAuth(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{User: "edge", Password: "s3cret"})
	if err := srv.AddApp(seedApp(t, 2), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}}).Apps(ctxT(t)); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("no credentials: err = %v", err)
	}
	apps, err := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}, User: "edge", Password: "s3cret"}).Apps(ctxT(t))
	if err != nil || len(apps) != 1 || len(apps[0].Tasks) != 2 {
		t.Fatalf("with credentials: %v %+v", err, apps)
	}
	withUserinfo := strings.Replace(srv.URL(), "http://", "http://edge:s3cret@", 1)
	c := newClient(t, discovery.ClientOptions{URLs: []string{withUserinfo}})
	if _, err := c.Apps(ctxT(t)); err != nil {
		t.Errorf("credentials in URL: %v", err)
	}
	if strings.Contains(c.URL(), "s3cret") {
		t.Errorf("URL() leaks the password: %q", c.URL())
	}
	last := srv.Requests()[len(srv.Requests())-1]
	if last.Path != "/v2/apps" || last.RawQuery != "embed=apps.tasks&embed=apps.readiness" || last.Accept != "application/json" {
		t.Errorf("request %+v", last)
	}
}

// mapDialer sends every "<name>.test:port" to 127.0.0.1:port, so that a
// redirect can cross to another host name without leaving loopback.
func mapDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(host, ".test") {
		host = "127.0.0.1"
	}
	if host != "127.0.0.1" {
		return nil, &net.AddrError{Err: "test dialer: loopback only", Addr: addr}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort(host, port))
}

// A standby answers 307 to the leader on another host name; net/http drops
// Authorization on such a hop, the client must not.
func TestClientLeaderRedirectKeepsCredentials(t *testing.T) {
	leakCheck(t)
	leader := startFake(t, marathontest.Options{User: "edge", Password: "s3cret"})
	if err := leader.AddApp(seedApp(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(leader.Addr())
	leaderBase := "http://marathon-leader.test:" + port
	standby := startFake(t, marathontest.Options{Leader: leader, RedirectBase: leaderBase})

	// Control: a plain net/http client loses the credentials on the hop.
	plain := &http.Client{Transport: &http.Transport{DialContext: mapDialer}, Timeout: 5 * time.Second}
	defer plain.CloseIdleConnections()
	req, _ := http.NewRequest("GET", standby.URL()+"/v2/apps", nil)
	req.SetBasicAuth("edge", "s3cret")
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("control: plain client got %d, want 401 (the test would prove nothing)", resp.StatusCode)
	}

	c := newClient(t, discovery.ClientOptions{URLs: []string{standby.URL()}, User: "edge", Password: "s3cret", DialContext: mapDialer})
	apps, err := c.Apps(ctxT(t))
	if err != nil || len(apps) != 1 {
		t.Fatalf("through standby: %v", err)
	}
	es, err := c.Subscribe(ctxT(t), discovery.EventTypes)
	if err != nil {
		t.Fatalf("events through standby: %v", err)
	}
	es.Close()
	var sawApps, sawEvents bool
	for _, r := range leader.Requests() {
		if r.Host != "marathon-leader.test:"+port || !strings.HasPrefix(r.Authorization, "Basic ") {
			continue
		}
		sawApps = sawApps || r.Path == "/v2/apps"
		sawEvents = sawEvents || (r.Path == "/v2/events" && r.Accept == "text/event-stream")
	}
	if !sawApps || !sawEvents {
		t.Errorf("leader saw credentials on /v2/apps %v, /v2/events %v: %+v", sawApps, sawEvents, leader.Requests())
	}
}

func TestClientRefusesHTTPSDowngradeRedirect(t *testing.T) {
	leakCheck(t)
	leader := startFake(t, marathontest.Options{})
	standby := startFake(t, marathontest.Options{Leader: leader, TLS: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, standby.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, discovery.ClientOptions{URLs: []string{standby.URL()}, CAFile: ca, User: "u", Password: "p"})
	if _, err := c.Apps(ctxT(t)); err == nil || !strings.Contains(err.Error(), "refusing redirect from https") {
		t.Errorf("err = %v", err)
	}
	if n := len(leader.Requests()); n != 0 {
		t.Errorf("leader got %d requests over plain http", n)
	}
}

var (
	keyOnce sync.Once
	saKey   *rsa.PrivateKey
	keyErr  error
)

func serviceKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() { saKey, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return saKey
}

func pkcs8PEM(t *testing.T, k *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestClientServiceAccount(t *testing.T) {
	leakCheck(t)
	key := serviceKey(t)
	clk := newClock()
	srv := startFake(t, marathontest.Options{
		ServiceAccounts: map[string]*rsa.PublicKey{"edgeproxy": &key.PublicKey},
		TokenTTL:        time.Hour,
		Now:             clk.Now,
	})
	logs := &logBuf{}
	c := newClient(t, discovery.ClientOptions{
		URLs:           []string{srv.URL()},
		ServiceAccount: &discovery.ServiceAccount{UID: "edgeproxy", PrivateKeyPEM: pkcs8PEM(t, key)},
		Now:            clk.Now,
		Logf:           logs.Logf,
	})
	for range 3 {
		if _, err := c.Apps(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Logins() != 1 {
		t.Fatalf("logins %d, want 1 (token reused)", srv.Logins())
	}
	for _, r := range srv.Requests() {
		if r.Path == "/v2/apps" && !strings.HasPrefix(r.Authorization, "token=") {
			t.Errorf("request without token: %+v", r)
		}
	}
	// Renewal on 401 (token revoked server side), one retry, no error.
	srv.RevokeTokens()
	if _, err := c.Apps(ctxT(t)); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if srv.Logins() != 2 || srv.Unauthorized() != 1 {
		t.Errorf("after revocation: logins %d (want 2), 401s %d (want 1)", srv.Logins(), srv.Unauthorized())
	}
	// Renewal before expiry: at 80 % of the token's hour, without a 401.
	clk.Add(47 * time.Minute)
	if _, err := c.Apps(ctxT(t)); err != nil || srv.Logins() != 2 {
		t.Fatalf("at 47 min: %v, logins %d (want 2)", err, srv.Logins())
	}
	clk.Add(2 * time.Minute)
	if _, err := c.Apps(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if srv.Logins() != 3 || srv.Unauthorized() != 1 {
		t.Errorf("at 49 min: logins %d (want 3), 401s %d (want 1)", srv.Logins(), srv.Unauthorized())
	}
	if logs.count(`logged in to DC/OS as "edgeproxy"`) != 3 {
		t.Errorf("logs:\n%s", logs)
	}

	// A key the IAM does not know: the error says so.
	other, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}, ServiceAccount: &discovery.ServiceAccount{
		UID: "edgeproxy", PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}),
	}})
	if _, err := bad.Apps(ctxT(t)); err == nil || !strings.Contains(err.Error(), "dcos login") || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("bad key: err = %v", err)
	}
}

func TestParseServiceAccountJSON(t *testing.T) {
	key := serviceKey(t)
	cred, _ := json.Marshal(map[string]string{
		"scheme": "RS256", "uid": "edgelb", "private_key": string(pkcs8PEM(t, key)),
		"login_endpoint": "https://master.mesos/acs/api/v1/auth/login",
	})
	sa, err := discovery.ParseServiceAccountJSON(cred)
	if err != nil || sa.UID != "edgelb" || sa.LoginEndpoint != "https://master.mesos/acs/api/v1/auth/login" {
		t.Fatalf("%+v %v", sa, err)
	}
	if _, err := discovery.NewClient(discovery.ClientOptions{URLs: []string{"http://marathon.mesos:8080"}, ServiceAccount: &sa}); err != nil {
		t.Errorf("NewClient: %v", err)
	}
	for _, bad := range []string{`{}`, `{"scheme":"HS256","uid":"a","private_key":"k"}`, `nope`} {
		if _, err := discovery.ParseServiceAccountJSON([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestClientFailover(t *testing.T) {
	leakCheck(t)
	down := refusedURL(t)
	sick := startFake(t, marathontest.Options{})
	sick.SetFault(marathontest.FaultUnavailable)
	good := startFake(t, marathontest.Options{})
	if err := good.AddApp(seedApp(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	c := newClient(t, discovery.ClientOptions{URLs: []string{down + " , " + sick.URL(), good.URL()}, Logf: logs.Logf})
	for range 3 {
		if apps, err := c.Apps(ctxT(t)); err != nil || len(apps) != 1 {
			t.Fatalf("apps: %v", err)
		}
	}
	if c.URL() != good.URL() {
		t.Errorf("URL() = %q, want %q", c.URL(), good.URL())
	}
	if n := len(sick.Requests()); n != 1 {
		t.Errorf("sick instance asked %d times, want once (stick to the one that works)", n)
	}
	if logs.count("using Marathon at") != 1 {
		t.Errorf("logs:\n%s", logs)
	}
	good.SetFault(marathontest.FaultGarbage)
	_, err := c.Apps(ctxT(t))
	for _, want := range []string{"connection refused", "status 503", "body starts"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("all failing: err = %v, want it to mention %q", err, want)
		}
	}
}

func TestClientCAFile(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{TLS: true})
	if _, err := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}}).Apps(ctxT(t)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without CA: err = %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}, CAFile: ca}).Apps(ctxT(t)); err != nil {
		t.Errorf("with CA: %v", err)
	}
}

func TestNewClientErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(notPEM, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts discovery.ClientOptions
		want string
	}{
		{"no url", discovery.ClientOptions{URLs: []string{" , "}}, "no URL"},
		{"bad scheme", discovery.ClientOptions{URLs: []string{"ftp://x"}}, `marathon url "ftp://x"`},
		{"no host", discovery.ClientOptions{URLs: []string{"http://"}}, "want http(s)://host"},
		{"missing CA", discovery.ClientOptions{URLs: []string{"http://x"}, CAFile: filepath.Join(dir, "none")}, "ca file"},
		{"CA not PEM", discovery.ClientOptions{URLs: []string{"http://x"}, CAFile: notPEM}, "no PEM certificate"},
		{"bad key", discovery.ClientOptions{URLs: []string{"http://x"}, ServiceAccount: &discovery.ServiceAccount{UID: "a", PrivateKeyPEM: []byte("x")}}, "no PEM block"},
	}
	for _, tc := range tests {
		if _, err := discovery.NewClient(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSubscribe(t *testing.T) {
	leakCheck(t)
	srv := startFake(t, marathontest.Options{Heartbeat: 20 * time.Millisecond})
	c := newClient(t, discovery.ClientOptions{URLs: []string{srv.URL()}, StreamIdleTimeout: 150 * time.Millisecond})
	es, err := c.Subscribe(ctxT(t), discovery.EventTypes)
	if err != nil {
		t.Fatal(err)
	}
	var req marathontest.Request
	for _, r := range srv.Requests() {
		if r.Path == "/v2/events" {
			req = r
		}
	}
	if req.Accept != "text/event-stream" || !strings.Contains(req.RawQuery, "event_type=status_update_event&event_type=health_status_changed_event") || !strings.Contains(req.RawQuery, "plan-format=light") {
		t.Errorf("request %+v", req)
	}
	// Heartbeats every 20 ms keep a 150 ms idle timeout from firing.
	type result struct {
		ev  discovery.Event
		err error
	}
	got := make(chan result, 16)
	go func() {
		for {
			ev, err := es.Next()
			got <- result{ev, err}
			if err != nil {
				return
			}
		}
	}()
	select {
	case r := <-got:
		t.Fatalf("before any change: %q %v", r.ev.Type, r.err)
	case <-time.After(400 * time.Millisecond):
	}
	if err := srv.AddApp(seedApp(t, 1), nil); err != nil {
		t.Fatal(err)
	}
	var types []string
	for len(types) < 3 {
		r := <-got
		if r.err != nil {
			t.Fatalf("after %q: %v", types, r.err)
		}
		types = append(types, r.ev.Type)
	}
	// api_post_event, then the filtered ones: instance_changed_event and
	// deployment_info are not subscribed.
	if strings.Join(types, ",") != "api_post_event,status_update_event,status_update_event" {
		t.Errorf("types %q", types)
	}
	es.Close()
	for r := range got { // buffered events, then the error
		if r.err != nil {
			break
		}
	}

	// Without heartbeats the stream is declared dead.
	quiet := startFake(t, marathontest.Options{Heartbeat: time.Hour})
	qc := newClient(t, discovery.ClientOptions{URLs: []string{quiet.URL()}, StreamIdleTimeout: 100 * time.Millisecond})
	qs, err := qc.Subscribe(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qs.Close()
	start := time.Now()
	for {
		ev, err := qs.Next()
		if err != nil {
			if !strings.Contains(err.Error(), "no data for 100ms") {
				t.Errorf("err = %v", err)
			}
			break
		}
		if ev.Type != "event_stream_attached" {
			t.Errorf("unexpected %q", ev.Type)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle detection took %v", d)
	}
}
