package elbtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// API versions and their XML namespaces.
const (
	versionCLB = "2012-06-01"
	versionV2  = "2015-12-01"
	nsCLB      = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	nsV2       = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
)

// apiError is an AWS error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func errf(code, format string, args ...any) *apiError {
	return &apiError{Status: defaultStatus(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorResponseXML struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

// serveELB answers one Query API request: POST form bodies and GET query
// strings alike.
func (s *Server) serveELB(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	action, version := r.Form.Get("Action"), r.Form.Get("Version")
	rid := requestID()
	status, body := s.handle(r, action, version)
	if s.opts.Logf != nil {
		s.opts.Logf("elbtest: %s %s (%s) -> %d", action, version, r.Header.Get("Amz-Sdk-Request"), status)
	}
	w.Header().Set("x-amzn-RequestId", rid)
	if status == http.StatusServiceUnavailable && body == nil {
		http.Error(w, "Service Unavailable", status)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.ReplaceAll(body, []byte("REQUEST-ID"), []byte(rid)))
}

// handle runs the request against the model under the lock and returns the
// HTTP status and body (nil body: bare 503).
func (s *Server) handle(r *http.Request, action, version string) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := Request{
		Action:  action,
		Version: version,
		Params:  cloneValues(r.Form),
		Attempt: r.Header.Get("Amz-Sdk-Request"),
		Time:    time.Now(),
	}
	ns := nsV2
	if version == versionCLB {
		ns = nsCLB
	}
	var (
		result any
		aerr   *apiError
	)
	if aerr = s.checkAuth(r); aerr == nil {
		if f := s.takeFault(action); f != nil {
			aerr = &apiError{Status: f.Status, Code: f.Code, Message: f.Message}
		}
	}
	if aerr == nil {
		switch version {
		case versionCLB:
			result, aerr = s.clbAction(action, r.Form)
		case versionV2:
			result, aerr = s.v2Action(action, r.Form)
		default:
			aerr = errf("InvalidAction", "Could not find operation %s for version %s", action, version)
		}
	}
	if aerr != nil {
		req.Status, req.Code = aerr.Status, aerr.Code
		s.requests = append(s.requests, req)
		if aerr.Code == "ServiceUnavailable" && aerr.Message == "" {
			return aerr.Status, nil
		}
		e := errorResponseXML{Xmlns: ns, RequestID: "REQUEST-ID"}
		e.Error.Type = "Sender"
		if aerr.Status >= 500 {
			e.Error.Type = "Receiver"
		}
		e.Error.Code, e.Error.Message = aerr.Code, aerr.Message
		b, _ := xml.Marshal(e)
		return aerr.Status, append([]byte(xml.Header), b...)
	}
	req.Status = http.StatusOK
	s.requests = append(s.requests, req)
	return http.StatusOK, marshalResult(ns, action, result)
}

// marshalResult builds <ActionResponse xmlns><ActionResult>…</ActionResult>
// <ResponseMetadata><RequestId/></ResponseMetadata></ActionResponse>.
func marshalResult(ns, action string, result any) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<%sResponse xmlns=%q>", action, ns)
	enc := xml.NewEncoder(&b)
	if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
		panic(fmt.Sprintf("elbtest: marshal %s: %v", action, err))
	}
	_ = enc.Flush()
	fmt.Fprintf(&b, "<ResponseMetadata><RequestId>REQUEST-ID</RequestId></ResponseMetadata></%sResponse>", action)
	return b.Bytes()
}

// checkAuth wants a SigV4 Authorization header scoped to this region and
// the "elasticloadbalancing" signing name. The signature itself is not
// checked.
func (s *Server) checkAuth(r *http.Request) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return errf("MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	cred, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential=")
	if !ok {
		return errf("IncompleteSignature", "Authorization header requires 'Credential' parameter")
	}
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return errf("IncompleteSignature", "Credential %q is malformed", cred)
	}
	if scope[3] != "elasticloadbalancing" {
		return errf("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'elasticloadbalancing'.")
	}
	if scope[2] != s.opts.Region {
		return errf("SignatureDoesNotMatch", "Credential should be scoped to a valid region, not '%s'.", scope[2])
	}
	return nil
}

// members returns the maps of prefix.member.N.Field values ordered by N;
// for plain lists (prefix.member.N=value) the field is "".
func members(form url.Values, prefix string) []map[string]string {
	byN := map[int]map[string]string{}
	for k, v := range form {
		rest, ok := strings.CutPrefix(k, prefix+".member.")
		if !ok || len(v) == 0 {
			continue
		}
		ns, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(ns)
		if err != nil || n < 1 {
			continue
		}
		if byN[n] == nil {
			byN[n] = map[string]string{}
		}
		byN[n][field] = v[0]
	}
	keys := make([]int, 0, len(byN))
	for n := range byN {
		keys = append(keys, n)
	}
	sort.Ints(keys)
	out := make([]map[string]string, 0, len(keys))
	for _, n := range keys {
		out = append(out, byN[n])
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func requestID() string {
	id := newID(16)
	return id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
}

func seconds(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
