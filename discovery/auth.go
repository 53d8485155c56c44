package discovery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ServiceAccount holds DC/OS service-account credentials. The client logs in
// by POSTing {"uid", "token"} to LoginEndpoint, where token is an RS256 JWT
// {"uid", "exp"} signed with the private key, and then sends
// "Authorization: token=<DC/OS auth token>" to Marathon.
type ServiceAccount struct {
	UID           string
	PrivateKeyPEM []byte // PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"
	// LoginEndpoint defaults to <scheme>://<host of the first Marathon
	// URL>/acs/api/v1/auth/login, dropping Marathon's own ports 8080/8443
	// (Admin Router serves the IAM on 80/443).
	LoginEndpoint string
}

// ParseServiceAccountJSON reads the DC/OS service-account credential secret
// (the DCOS_SERVICE_ACCOUNT_CREDENTIAL format):
// {"scheme": "RS256", "uid": ..., "private_key": ..., "login_endpoint": ...}.
func ParseServiceAccountJSON(data []byte) (ServiceAccount, error) {
	var v struct {
		Scheme        string `json:"scheme"`
		UID           string `json:"uid"`
		PrivateKey    string `json:"private_key"`
		LoginEndpoint string `json:"login_endpoint"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return ServiceAccount{}, fmt.Errorf("service account credential: %w", err)
	}
	if v.Scheme != "" && v.Scheme != "RS256" {
		return ServiceAccount{}, fmt.Errorf("service account credential: unsupported scheme %q", v.Scheme)
	}
	if v.UID == "" || v.PrivateKey == "" {
		return ServiceAccount{}, fmt.Errorf("service account credential: uid and private_key are required")
	}
	return ServiceAccount{UID: v.UID, PrivateKeyPEM: []byte(v.PrivateKey), LoginEndpoint: v.LoginEndpoint}, nil
}

func parseRSAPrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("private key: no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key: %T is not RSA", k)
	}
	return rk, nil
}

var b64 = base64.RawURLEncoding

// signRS256 builds a compact JWS (RFC 7515) with an RS256 (RFC 7518 §3.3)
// signature over the given claims.
func signRS256(key *rsa.PrivateKey, claims any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}

// jwtExpiry reads the "exp" claim of a JWT without verifying it (the token
// is the IAM's, we only want to know when to renew it).
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := b64.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(c.Exp), 0), true
}

// Token lifetimes.
const (
	loginTokenLifetime = 5 * time.Minute // the IAM rejects service login tokens living over 10 min
	unknownTokenRenew  = time.Hour       // renewal interval when the auth token has no readable exp
)

// tokenSource logs in and caches the DC/OS auth token.
type tokenSource struct {
	sa       ServiceAccount
	key      *rsa.PrivateKey
	endpoint string
	hc       *http.Client
	now      func() time.Time
	logf     Logf

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

// get returns a valid token, logging in when there is none or it is due for
// renewal (80 % of its lifetime).
func (ts *tokenSource) get(ctx context.Context) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token != "" && ts.now().Before(ts.renewAt) {
		return ts.token, nil
	}
	return ts.loginLocked(ctx)
}

// invalidate forgets tok (after a 401) so the next get logs in again. An
// empty tok forgets whatever token is cached.
func (ts *tokenSource) invalidate(tok string) {
	ts.mu.Lock()
	if tok == "" || ts.token == tok {
		ts.token = ""
	}
	ts.mu.Unlock()
}

func (ts *tokenSource) loginLocked(ctx context.Context) (string, error) {
	now := ts.now()
	login, err := signRS256(ts.key, map[string]any{"uid": ts.sa.UID, "exp": now.Add(loginTokenLifetime).Unix()})
	if err != nil {
		return "", fmt.Errorf("dcos login: sign: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"uid": ts.sa.UID, "token": login})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("dcos login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("dcos login: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("dcos login: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("dcos login as %q at %q: status %d: %q", ts.sa.UID, ts.endpoint, resp.StatusCode, truncate(raw, 200))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("dcos login as %q: no token in answer %q", ts.sa.UID, truncate(raw, 200))
	}
	ts.token = out.Token
	if exp, ok := jwtExpiry(out.Token); ok && exp.After(now) {
		ts.renewAt = now.Add(exp.Sub(now) * 8 / 10)
	} else {
		ts.renewAt = now.Add(unknownTokenRenew)
	}
	ts.logf.printf("discovery: logged in to DC/OS as %q", ts.sa.UID)
	return ts.token, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
