package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

// statsListener serves the pool's stats and admin endpoints on
// haproxy.stats.bindAddress:bindPort.
type statsListener struct {
	ln  net.Listener
	srv *http.Server
}

func newStatsListener(in *instance) (*statsListener, error) {
	st := in.pool.Haproxy.Stats
	port := 9090
	if st.BindPort != nil {
		port = int(*st.BindPort)
	}
	addr := net.JoinHostPort(st.BindAddress, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stats listener: %w", err)
	}
	mux := http.NewServeMux()
	health := func(w http.ResponseWriter, r *http.Request) {
		if !in.ready() {
			http.Error(w, "draining or not synced", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "OK")
	}
	mux.HandleFunc("/_haproxy_health_check", health)
	mux.HandleFunc("/readyz", health)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("/_haproxy_getpids", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, os.Getpid()) })
	mux.HandleFunc("/_haproxy_getconfig", func(w http.ResponseWriter, r *http.Request) {
		out, err := in.pool.MarshalEffective()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	in.log.Info("stats listening", "address", ln.Addr().String())
	return &statsListener{ln: ln, srv: &http.Server{Handler: mux}}, nil
}

func (s *statsListener) serve() { _ = s.srv.Serve(s.ln) }

func (s *statsListener) shutdown(ctx context.Context) { _ = s.srv.Shutdown(ctx) }
