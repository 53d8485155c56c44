package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/edgeproxy/edgeproxy/healthcheck"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/stats"
)

// statsListener serves the pool's stats and admin endpoints on
// haproxy.stats.bindAddress:bindPort.
type statsListener struct {
	ln  net.Listener
	srv *stats.Server
}

func newStatsListener(in *instance) (*statsListener, error) {
	st := in.pool.Haproxy.Stats
	port := 9090
	if st.BindPort != nil {
		port = int(*st.BindPort)
	}
	if port == 0 {
		// Edge-LB 1.3+: 0 means the port the pool scheduler allocated,
		// which the task finds in $HAPROXY_STATS_PORT; without it, any
		// free port (logged below).
		if v := os.Getenv("HAPROXY_STATS_PORT"); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p < 0 || p > 65535 {
				return nil, fmt.Errorf("stats listener: HAPROXY_STATS_PORT=%q is not a port", v)
			}
			port = p
		}
	}
	addr := net.JoinHostPort(st.BindAddress, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stats listener: %w", err)
	}
	links := map[*proxy.Frontend][]*proxy.Backend{}
	for i, lf := range in.frontends {
		fc := &in.pool.Haproxy.Frontends[i]
		if d := fc.LinkBackend.DefaultBackend; d != "" {
			links[lf.fe] = append(links[lf.fe], in.backends[d])
		}
		for _, m := range fc.LinkBackend.Map {
			links[lf.fe] = append(links[lf.fe], in.backends[m.Backend])
		}
	}
	srv := stats.New(stats.Options{
		Frontends: func() []*proxy.Frontend {
			out := make([]*proxy.Frontend, len(in.frontends))
			for i, lf := range in.frontends {
				out[i] = lf.fe
			}
			return out
		},
		Backends:         func() []*proxy.Backend { return in.order },
		FrontendBackends: func(f *proxy.Frontend) []*proxy.Backend { return links[f] },
		ServerHealth:     serverHealth,
		PoolName:         in.pool.Name,
		Config:           in.pool.MarshalEffective,
		Ready:            in.ready,
		Version:          version,
		Logf:             logfFor(in.log.With("component", "stats")),
		Extra:            in.extraMetrics(),
	})
	in.log.Info("stats listening", "address", ln.Addr().String())
	return &statsListener{ln: ln, srv: srv}, nil
}

// checkDescs are HAProxy's check_desc texts for each check result.
var checkDescs = map[healthcheck.Result]string{
	healthcheck.ResultNone:       "Initializing",
	healthcheck.ResultL4OK:       "Layer4 check passed",
	healthcheck.ResultL4Timeout:  "Layer4 timeout",
	healthcheck.ResultL4Conn:     "Layer4 connection problem",
	healthcheck.ResultL7OK:       "Layer7 check passed",
	healthcheck.ResultL7Timeout:  "Layer7 timeout",
	healthcheck.ResultL7Response: "Layer7 invalid response",
	healthcheck.ResultL7Status:   "Layer7 wrong status",
}

// serverHealth reports a server's health checking for the stats page.
func serverHealth(s *proxy.Server) (stats.ServerHealth, bool) {
	t, ok := s.Health().(*healthcheck.Target)
	if !ok {
		return stats.ServerHealth{}, false
	}
	st := t.Snapshot()
	h := stats.ServerHealth{
		State: "UP", Checked: st.CheckEnabled, CheckStatus: st.LastResult.String(),
		CheckCode: st.LastCode, CheckDuration: st.LastDuration, Rise: st.Rise, Fall: st.Fall,
		CheckFailures: st.CheckFailures, Downs: st.Downs, LastChange: st.LastChange, Downtime: st.Downtime,
	}
	switch st.State {
	case healthcheck.StateDown:
		h.State = "DOWN"
	case healthcheck.StateDraining:
		h.State = "DRAIN"
	}
	// check_desc is HAProxy's fixed description of the check status;
	// last_chk the detail, as HAProxy gives it: the system error of a
	// failed connect or read, in strerror's words ("Connection refused");
	// the reason phrase of an unexpected status (the check keeps only the
	// code, so its standard phrase); nothing for a pass or a timeout. For
	// a malformed or missing status line, where HAProxy says nothing more,
	// it is what the check found ("Malformed status line").
	h.CheckDesc = checkDescs[st.LastResult]
	capitalized := func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	}
	var errno syscall.Errno
	switch {
	case st.LastResult == healthcheck.ResultL7Status:
		h.CheckDetail = http.StatusText(st.LastCode)
	case st.LastErr == nil, st.LastResult == healthcheck.ResultL4Timeout, st.LastResult == healthcheck.ResultL7Timeout:
	case errors.As(st.LastErr, &errno):
		h.CheckDetail = capitalized(errno.Error())
	default:
		h.CheckDetail = capitalized(st.LastErr.Error())
	}
	if st.Check == healthcheck.StateDown {
		h.Health = st.Successes
	} else {
		h.Health = st.Rise + st.Fall - 1 - st.Failures
	}
	return h, true
}

func (s *statsListener) serve() { _ = s.srv.Serve(s.ln) }

func (s *statsListener) shutdown(ctx context.Context) { _ = s.srv.Shutdown(ctx) }
