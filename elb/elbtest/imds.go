package elbtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// IMDSv2 wire format: PUT /latest/api/token with
// X-Aws-Ec2-Metadata-Token-Ttl-Seconds (1–21600) returns a token and echoes
// the TTL; GETs carry the token in X-Aws-Ec2-Metadata-Token.
const (
	tokenPath       = "/latest/api/token"
	ttlHeader       = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	tokenHeader     = "X-Aws-Ec2-Metadata-Token"
	maxTokenTTL     = 21600
	identityDocPath = "/latest/dynamic/instance-identity/document"
	metadataPrefix  = "/latest/meta-data/"
)

// SetHopLimit changes the instance's HttpPutResponseHopLimit, as
// `aws ec2 modify-instance-metadata-options --http-put-response-hop-limit`
// would.
func (s *Server) SetHopLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.HopLimit = n
}

// SetHops changes the number of network hops between caller and IMDS.
func (s *Server) SetHops(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Hops = n
}

// IMDSStats counts metadata requests.
type IMDSStats struct {
	TokenPUTs int // token requests, answered or dropped
	GETs      int // metadata GETs answered with 200
	V1GETs    int // of those, GETs without a token (IMDSv1)
}

// IMDSStats returns the metadata request counters.
func (s *Server) IMDSStats() IMDSStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return IMDSStats{TokenPUTs: s.tokenPUTs, GETs: s.imdsGETs, V1GETs: s.imdsV1GETs}
}

func (s *Server) serveIMDS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == tokenPath {
		s.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	tok := r.Header.Get(tokenHeader)
	switch {
	case tok != "":
		exp, ok := s.tokens[tok]
		if !ok || !s.opts.Now().Before(exp) {
			s.mu.Unlock()
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
	case !s.opts.IMDSv1:
		s.mu.Unlock()
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	body, ok := s.metadata(r.URL.Path)
	if ok {
		s.imdsGETs++
		if tok == "" {
			s.imdsV1GETs++
		}
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	s.tokenPUTs++
	dropped := s.opts.Hops >= s.opts.HopLimit
	s.mu.Unlock()
	if dropped {
		// The answer's IP TTL runs out on the way: the client hears
		// nothing until it gives up.
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(ttlHeader))
	if err != nil || ttl < 1 || ttl > maxTokenTTL {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	tok := newID(28)
	s.mu.Lock()
	s.tokens[tok] = s.opts.Now().Add(time.Duration(ttl) * time.Second)
	s.mu.Unlock()
	w.Header().Set(ttlHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

// metadata returns the document at path.
func (s *Server) metadata(path string) (string, bool) {
	in := s.opts.Instance
	if path == identityDocPath {
		doc, _ := json.MarshalIndent(map[string]any{
			"accountId":        s.opts.AccountID,
			"architecture":     "x86_64",
			"availabilityZone": in.AvailabilityZone,
			"imageId":          in.ImageID,
			"instanceId":       in.ID,
			"instanceType":     in.InstanceType,
			"pendingTime":      "2026-11-24T00:00:00Z",
			"privateIp":        in.PrivateIPv4,
			"region":           s.opts.Region,
			"version":          "2017-09-30",
		}, "", "  ")
		return string(doc), true
	}
	p, ok := strings.CutPrefix(path, metadataPrefix)
	if !ok {
		return "", false
	}
	values := map[string]string{
		"instance-id":                 in.ID,
		"instance-type":               in.InstanceType,
		"ami-id":                      in.ImageID,
		"local-ipv4":                  in.PrivateIPv4,
		"placement/availability-zone": in.AvailabilityZone,
		"placement/region":            s.opts.Region,
	}
	if p == "" {
		return "ami-id\ninstance-id\ninstance-type\nlocal-ipv4\nplacement/", true
	}
	v, ok := values[p]
	return v, ok && v != ""
}
