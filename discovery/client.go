package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// ClientOptions configures a Client. Only URLs is required.
type ClientOptions struct {
	// URLs are Marathon base URLs, e.g. "http://marathon.mesos:8080" or
	// "https://master.mesos/service/marathon". An element may hold several
	// comma-separated URLs (the --marathon flag syntax). Credentials in a
	// URL's userinfo are used for HTTP basic auth when User is empty.
	URLs []string
	// User and Password enable HTTP basic auth (Marathon --http_credentials).
	User, Password string
	// ServiceAccount enables DC/OS service-account login; it wins over
	// basic auth when both are set.
	ServiceAccount *ServiceAccount
	// CAFile is a PEM bundle trusted for https URLs (on DC/OS nodes:
	// /run/dcos/pki/CA/ca-bundle.crt). Empty means the system roots.
	CAFile string
	// Timeout bounds one API call (login, /v2/apps) and the wait for the
	// event stream's response headers. Default 10s.
	Timeout time.Duration
	// StreamIdleTimeout closes an event stream that sent no byte (not even
	// a heartbeat; Marathon sends one every 10 s) for this long. Default 30s.
	StreamIdleTimeout time.Duration
	// Logf receives state changes (login, URL switch). Default: discard.
	Logf func(format string, args ...any)
	// Now is the clock used for token renewal. Default time.Now.
	Now func() time.Time
	// DialContext replaces the TCP dialer (tests, custom resolvers).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client reads Marathon's API. It is safe for concurrent use.
type Client struct {
	urls    []*url.URL
	user    string
	pass    string
	timeout time.Duration
	idle    time.Duration
	logf    Logf
	tr      *http.Transport
	api     *http.Client // API calls (bounded by Timeout through the context)
	stream  *http.Client // event streams (unbounded)
	tokens  *tokenSource

	mu  sync.Mutex
	cur int // index of the URL that last worked; tried first
}

// Paths and parameters of the Marathon API (reference §1.1, §3.1).
const (
	appsPath   = "/v2/apps"
	eventsPath = "/v2/events"
	loginPath  = "/acs/api/v1/auth/login"
	// maxAppsBytes bounds a /v2/apps answer.
	maxAppsBytes = 256 << 20
)

var appsQuery = url.Values{"embed": {"apps.tasks", "apps.readiness"}}.Encode()

// NewClient validates the options and builds a Client. It does no I/O.
func NewClient(opts ClientOptions) (*Client, error) {
	c := &Client{
		user:    opts.User,
		pass:    opts.Password,
		timeout: opts.Timeout,
		idle:    opts.StreamIdleTimeout,
		logf:    opts.Logf,
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Second
	}
	if c.idle <= 0 {
		c.idle = 30 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	for _, s := range opts.URLs {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			if one == "" {
				continue
			}
			u, err := url.Parse(one)
			if err != nil {
				return nil, fmt.Errorf("marathon url %q: %w", one, err)
			}
			if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("marathon url %q: want http(s)://host[:port][/path]", one)
			}
			if u.User != nil {
				if c.user == "" {
					c.user = u.User.Username()
					c.pass, _ = u.User.Password()
				}
				u.User = nil
			}
			u.Path = strings.TrimRight(u.Path, "/")
			u.RawQuery, u.Fragment = "", ""
			c.urls = append(c.urls, u)
		}
	}
	if len(c.urls) == 0 {
		return nil, errors.New("marathon: no URL given")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pemBytes, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("marathon ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("marathon ca file %q: no PEM certificate", opts.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	dial := opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: c.timeout, KeepAlive: 30 * time.Second}).DialContext
	}
	c.tr = &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   c.timeout,
		ResponseHeaderTimeout: c.timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	rt := &authTransport{c: c, base: c.tr}
	c.api = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	c.stream = &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	if sa := opts.ServiceAccount; sa != nil {
		key, err := parseRSAPrivateKey(sa.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("service account %q: %w", sa.UID, err)
		}
		if sa.UID == "" {
			return nil, errors.New("service account: empty uid")
		}
		endpoint := sa.LoginEndpoint
		if endpoint == "" {
			endpoint = defaultLoginEndpoint(c.urls[0])
		}
		c.tokens = &tokenSource{
			sa:       *sa,
			key:      key,
			endpoint: endpoint,
			hc:       &http.Client{Transport: c.tr, CheckRedirect: checkRedirect, Timeout: c.timeout},
			now:      now,
			logf:     c.logf,
		}
	}
	return c, nil
}

func defaultLoginEndpoint(u *url.URL) string {
	host := u.Host
	if p := u.Port(); p == "8080" || p == "8443" {
		host = u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return (&url.URL{Scheme: u.Scheme, Host: host, Path: loginPath}).String()
}

// Close releases idle connections. Open event streams must be closed by
// their owner.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// URL returns the Marathon URL that answered last (credentials removed).
func (c *Client) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.urls[c.cur].String()
}

// checkRedirect follows Marathon's leader redirects (307 from a standby, 302
// for /v2/events since 1.7). Credentials survive the hop because
// authTransport adds them to every request, including the redirected ones
// that net/http stripped of Authorization for being on another host. It
// refuses to downgrade from https to http, which would leak them.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %q", req.URL.Redacted())
	}
	return nil
}

// authTransport adds credentials to every request it sends.
type authTransport struct {
	c    *Client
	base http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	switch {
	case t.c.tokens != nil:
		tok, err := t.c.tokens.get(req.Context())
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		r.Header.Set("Authorization", "token="+tok)
	case t.c.user != "":
		r.SetBasicAuth(t.c.user, t.c.pass)
	}
	return t.base.RoundTrip(r)
}

// each runs try against the URLs, starting with the one that worked last,
// until one succeeds. It remembers the winner.
func (c *Client) each(ctx context.Context, try func(ctx context.Context, base *url.URL) error) error {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	for i := range c.urls {
		idx := (start + i) % len(c.urls)
		err := try(ctx, c.urls[idx])
		if err == nil {
			c.mu.Lock()
			changed := c.cur != idx
			c.cur = idx
			c.mu.Unlock()
			if changed {
				c.logf.printf("discovery: using Marathon at %q", c.urls[idx].Redacted())
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// send does one GET against base and returns a 200 response. A 401 with
// service-account auth renews the token and retries once.
func (c *Client) send(ctx context.Context, hc *http.Client, base *url.URL, pathQuery, accept string) (*http.Response, error) {
	target := base.String() + pathQuery
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		if accept == "text/event-stream" {
			req.Header.Set("Cache-Control", "no-cache")
			req.Header.Set("Accept-Encoding", "identity") // no gzip buffering of a stream
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %q: %w", redact(base, pathQuery), err)
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil && attempt == 0 {
			used := strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "token=")
			c.tokens.invalidate(used)
			continue
		}
		return nil, fmt.Errorf("GET %q: status %d: %q", redact(base, pathQuery), resp.StatusCode, truncate(snippet, 120))
	}
}

func redact(base *url.URL, pathQuery string) string {
	return base.Redacted() + pathQuery
}

// Apps fetches GET /v2/apps?embed=apps.tasks&embed=apps.readiness, failing
// over across the URLs on transport errors, non-200 answers and bodies that
// do not decode. Apps or tasks that do not decode are skipped and logged.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	apps, _, err := c.fetchApps(ctx, c.logf)
	return apps, err
}

// fetchApps is Apps with the decode log hook and the ids of the apps that
// did not decode.
func (c *Client) fetchApps(ctx context.Context, logf Logf) (apps []App, broken []string, err error) {
	err = c.each(ctx, func(ctx context.Context, base *url.URL) error {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		resp, err := c.send(ctx, c.api, base, appsPath+"?"+appsQuery, "application/json")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAppsBytes+1))
		if err != nil {
			return fmt.Errorf("GET %q: %w", redact(base, appsPath), err)
		}
		if len(body) > maxAppsBytes {
			return fmt.Errorf("GET %q: answer over %d bytes", redact(base, appsPath), maxAppsBytes)
		}
		a, b, err := decodeApps(body, logf)
		if err != nil {
			return fmt.Errorf("GET %q: %w (body starts %q)", redact(base, appsPath), err, truncate(body, 40))
		}
		apps, broken = a, b
		return nil
	})
	return apps, broken, err
}
