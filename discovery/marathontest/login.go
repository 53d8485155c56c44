package marathontest

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

var b64 = base64.RawURLEncoding

// maxLoginTokenLifetime: "The IAM will reject service login tokens with a
// life-time greater than ten minutes" (DC/OS service-login docs).
const maxLoginTokenLifetime = 10 * time.Minute

// verifyRS256 checks a compact JWS signed with RS256 and returns its claims.
func verifyRS256(tok string, pub *rsa.PublicKey) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	hdrRaw, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdrRaw, &hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if hdr.Alg != "RS256" {
		return nil, fmt.Errorf("alg %q, want RS256", hdr.Alg)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	body, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	return claims, nil
}

// issueToken makes a JWT-shaped DC/OS auth token (HS256 under the fake's
// own secret) with uid and exp claims, and remembers it.
func (s *Server) issueTokenLocked(uid string, now time.Time) string {
	exp := now.Add(s.opts.TokenTTL)
	hdr, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"uid": uid, "exp": exp.Unix()})
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.secret[:])
	mac.Write([]byte(signing))
	tok := signing + "." + b64.EncodeToString(mac.Sum(nil))
	s.tokens[tok] = exp
	return tok
}

// serveLogin is POST /acs/api/v1/auth/login with a service login token.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"title": "Method not allowed"})
		return
	}
	var body struct {
		UID   string `json:"uid"`
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"title": "Bad Request", "description": err.Error(), "code": "ERR_MALFORMED_REQUEST"})
		return
	}
	fail := func(why string) {
		s.mu.Lock()
		s.failedLogins++
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"title": "Invalid authentication credentials", "description": why, "code": "ERR_INVALID_SERVICE_LOGIN_TOKEN",
		})
	}
	s.mu.Lock()
	pub := s.opts.ServiceAccounts[body.UID]
	s.mu.Unlock()
	if pub == nil {
		fail(fmt.Sprintf("unknown uid %q", body.UID))
		return
	}
	claims, err := verifyRS256(body.Token, pub)
	if err != nil {
		fail(err.Error())
		return
	}
	now := s.now()
	uid, _ := claims["uid"].(string)
	exp, _ := claims["exp"].(float64)
	switch {
	case uid != body.UID:
		fail(fmt.Sprintf("token uid %q does not match %q", uid, body.UID))
		return
	case exp == 0:
		fail("token has no exp")
		return
	case time.Unix(int64(exp), 0).Before(now):
		fail("token expired")
		return
	case time.Unix(int64(exp), 0).After(now.Add(maxLoginTokenLifetime + time.Minute)):
		fail("token lifetime over ten minutes")
		return
	}
	s.mu.Lock()
	s.logins++
	tok := s.issueTokenLocked(uid, now)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "dcos-acs-auth-cookie", Value: tok, Path: "/", HttpOnly: true})
	writeJSON(w, http.StatusOK, map[string]any{"token": tok})
}

// authorized checks HTTP basic credentials or a DC/OS token.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.User == "" && len(s.opts.ServiceAccounts) == 0 {
		return true
	}
	h := r.Header.Get("Authorization")
	if s.opts.User != "" {
		if u, p, ok := r.BasicAuth(); ok && u == s.opts.User && p == s.opts.Password {
			return true
		}
	}
	if tok, ok := strings.CutPrefix(h, "token="); ok && len(s.opts.ServiceAccounts) > 0 {
		s.mu.Lock()
		exp, known := s.tokens[tok]
		s.mu.Unlock()
		return known && s.now().Before(exp)
	}
	return false
}

// RevokeTokens forgets every issued DC/OS token: the next request with one
// gets a 401, as after an IAM secret rotation.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Logins returns the number of successful service-account logins.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// FailedLogins returns the number of refused logins.
func (s *Server) FailedLogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedLogins
}

// Unauthorized returns the number of requests answered 401.
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthorized
}
