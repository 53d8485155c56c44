// Package marathontest is a fake Marathon for tests and demos: an HTTP
// server on loopback that holds apps and their tasks and speaks Marathon's
// wire format (GET /v2/apps with embedded tasks, GET /v2/tasks, scaling
// through PUT /v2/apps/{id}, task kills, the /v2/events server-sent-event
// stream with Jetty's exact framing and heartbeat), with HTTP basic and
// DC/OS service-account authentication, standby instances that redirect to
// the leader, and scripted failures.
//
// It is a normal package so that non-test binaries (the demo) can use it.
// Its JSON is checked against real captures in the repository's shared
// fixtures so it cannot drift from the real format.
//
// Every address it hands out is on loopback: agents are Options.AgentHost
// (127.0.0.1), container IPs are 127.0.1.x, Docker bridge IPs 127.0.2.x, so
// a consumer that picks the wrong address can never send traffic off the
// machine. Tasks can be pointed at real local backends (AddApp's backends).
package marathontest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configures a Server. The zero value is a plain leader with no
// authentication.
type Options struct {
	// Leader turns this instance into a standby that answers every request
	// but /ping and /v2/leader with a redirect to the leader.
	Leader *Server
	// RedirectBase replaces Leader.URL() in redirects (e.g. a hostname that
	// a test dialer maps to loopback).
	RedirectBase string
	// RedirectStatus is the redirect code. Default 307.
	RedirectStatus int

	// User and Password require HTTP basic auth on /v2/*.
	User, Password string
	// ServiceAccounts enables the DC/OS login endpoint
	// POST /acs/api/v1/auth/login, verifying the RS256 service login token
	// with the uid's public key, and requires "Authorization: token=..."
	// (or basic auth when User is set) on /v2/*.
	ServiceAccounts map[string]*rsa.PublicKey
	// TokenTTL is the lifetime of issued auth tokens. Default 5 days (DC/OS).
	TokenTTL time.Duration

	// AgentHost is every task's host. Default 127.0.0.1.
	AgentHost string
	// HostPortMin and HostPortMax bound allocated host ports. Default
	// 31000-32000 (the Mesos agent default range).
	HostPortMin, HostPortMax int
	// Heartbeat is the event stream heartbeat period. Default 10s (Jetty).
	Heartbeat time.Duration
	// StartDelay is how long a new task stays TASK_STAGING. Default 0.
	StartDelay time.Duration
	// KillDelay is how long a killed task stays TASK_KILLING. Default 100ms.
	KillDelay time.Duration
	// NoInitialHealth leaves new tasks of apps with health checks without
	// results (as during gracePeriodSeconds) instead of one alive result.
	NoInitialHealth bool
	// TLS serves https with a self-signed certificate for 127.0.0.1
	// (see CertPEM).
	TLS bool
	// Now is the clock for timestamps and token expiry. Default time.Now.
	Now func() time.Time
}

// Fault is a scripted failure.
type Fault int

// Scripted failures (SetFault).
const (
	FaultNone        Fault = iota
	FaultUnavailable       // 503 on every /v2 request, as without a leader
	FaultGarbage           // 200 with truncated JSON on GET /v2/apps* and /v2/tasks
	FaultHTML              // 200 with an HTML error page on the same endpoints
)

// Request is one request the server received.
type Request struct {
	Method, Path, RawQuery, Host string
	Authorization, Accept        string
}

// TaskInfo describes one task.
type TaskInfo struct {
	ID, AppID, Host string
	Ports           []int
	IPAddress       string
	State           string
	Alive           *bool // nil: no health result
}

// Server is a fake Marathon instance.
type Server struct {
	opts    Options
	agentID string
	secret  [32]byte
	cert    *tls.Certificate
	certPEM []byte

	mu              sync.Mutex
	apps            map[string]*app
	subs            map[*subscriber]struct{}
	usedHostPorts   map[int]bool
	hostPortSeq     int
	nextServicePort int
	ipSeq           int
	fault           Fault
	requests        []Request
	tokens          map[string]time.Time
	logins          int
	failedLogins    int
	unauthorized    int
	eventsEmitted   int
	timers          map[*time.Timer]struct{}
	closed          bool
	stopped         bool
	addr            string
	hs              *http.Server

	timerWG sync.WaitGroup
	serveWG sync.WaitGroup
}

// New returns an unstarted Server.
func New(opts Options) *Server {
	if opts.RedirectStatus == 0 {
		opts.RedirectStatus = http.StatusTemporaryRedirect
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 5 * 24 * time.Hour
	}
	if opts.AgentHost == "" {
		opts.AgentHost = "127.0.0.1"
	}
	if opts.HostPortMin <= 0 {
		opts.HostPortMin = 31000
	}
	if opts.HostPortMax < opts.HostPortMin {
		opts.HostPortMax = max(32000, opts.HostPortMin)
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 10 * time.Second
	}
	if opts.KillDelay == 0 {
		opts.KillDelay = 100 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:            opts,
		agentID:         newUUID() + "-S0",
		apps:            map[string]*app{},
		subs:            map[*subscriber]struct{}{},
		usedHostPorts:   map[int]bool{},
		nextServicePort: 10000,
		tokens:          map[string]time.Time{},
		timers:          map[*time.Timer]struct{}{},
	}
	_, _ = rand.Read(s.secret[:])
	if opts.TLS {
		s.cert, s.certPEM = selfSignedCert()
	}
	return s
}

func (s *Server) now() time.Time { return s.opts.Now() }

// Start listens on addr ("" means 127.0.0.1:0) and serves in the background.
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("marathontest: %w", err)
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.serve(ln)
	return nil
}

func (s *Server) serve(ln net.Listener) {
	if s.cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*s.cert}})
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	s.mu.Lock()
	s.hs = hs
	s.stopped = false
	s.mu.Unlock()
	s.serveWG.Go(func() { _ = hs.Serve(ln) })
}

// Addr returns host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the base URL, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	scheme := "http"
	if s.cert != nil {
		scheme = "https"
	}
	return scheme + "://" + s.Addr()
}

// CertPEM returns the self-signed certificate of a TLS server (a CA file
// for clients), or nil.
func (s *Server) CertPEM() []byte { return s.certPEM }

// Stop closes the listener and every connection, as a crashed Marathon:
// clients get "connection refused" until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	hs := s.hs
	s.hs = nil
	s.stopped = true
	for sub := range s.subs {
		s.dropLocked(sub)
	}
	s.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	_ = hs.Close()
	s.serveWG.Wait()
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart() error {
	s.mu.Lock()
	addr, running := s.addr, s.hs != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("marathontest: restart: %w", err)
	}
	s.serve(ln)
	return nil
}

// Close stops the server and its timers and waits for its goroutines.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		if t.Stop() {
			s.timerWG.Done()
		}
		delete(s.timers, t)
	}
	s.mu.Unlock()
	s.timerWG.Wait()
}

// SetFault scripts a failure mode (FaultNone to heal).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// afterLocked runs fn under s.mu after d (at once when d <= 0).
func (s *Server) afterLocked(d time.Duration, fn func()) {
	if d <= 0 {
		fn()
		return
	}
	s.timerWG.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer s.timerWG.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.timers, t)
		if !s.closed {
			fn()
		}
	})
	s.timers[t] = struct{}{}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; qs=2")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func message(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]any{"message": fmt.Sprintf(format, args...)})
}

// ServeHTTP routes a request like Marathon (reference §1.1).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
		Authorization: r.Header.Get("Authorization"), Accept: r.Header.Get("Accept"),
	})
	fault := s.fault
	s.mu.Unlock()

	switch {
	case r.URL.Path == "/ping":
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "pong")
		return
	case r.URL.Path == "/v2/leader" && r.Method == http.MethodGet:
		leader := s
		if s.opts.Leader != nil {
			leader = s.opts.Leader
		}
		writeJSON(w, http.StatusOK, map[string]any{"leader": leader.Addr()})
		return
	case s.opts.Leader != nil:
		base := s.opts.RedirectBase
		if base == "" {
			base = s.opts.Leader.URL()
		}
		http.Redirect(w, r, base+r.URL.RequestURI(), s.opts.RedirectStatus)
		return
	case fault == FaultUnavailable:
		message(w, http.StatusServiceUnavailable, "Could not determine the current leader")
		return
	case r.URL.Path == "/acs/api/v1/auth/login" && len(s.opts.ServiceAccounts) > 0:
		s.serveLogin(w, r)
		return
	}
	if !s.authorized(r) {
		s.mu.Lock()
		s.unauthorized++
		s.mu.Unlock()
		if s.opts.User != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere Marathon"`)
		} else {
			w.Header().Set("WWW-Authenticate", "acsjwt")
		}
		message(w, http.StatusUnauthorized, "Not Authenticated!")
		return
	}
	if (fault == FaultGarbage || fault == FaultHTML) && r.Method == http.MethodGet && r.URL.Path != "/v2/events" {
		if fault == FaultGarbage {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"apps":[{"id":"/customer","tasks":[{"id":"customer.`)
		} else {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}
		return
	}
	s.route(w, r)
}

var (
	errNotFound  = errors.New("not found")
	errAppExists = errors.New("app already exists")
)
