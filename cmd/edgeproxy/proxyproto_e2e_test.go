package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// proxyV2 builds a PROXY protocol version 2 header (haproxy's
// proxy-protocol.txt, section 2.2): the 12-byte signature, version 2 with
// command PROXY (or LOCAL), the address family, then the addresses and
// TLVs.
func proxyV2(local bool, src, dst netip.AddrPort, tlvs []byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	cmd := byte(0x21) // version 2, PROXY
	if local {
		cmd = 0x20
	}
	var fam byte
	var addrs []byte
	switch {
	case local:
		fam = 0x00 // UNSPEC
	case src.Addr().Is4():
		fam = 0x11 // TCP over IPv4
		a, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, a[:]...), d[:]...)
	default:
		fam = 0x21 // TCP over IPv6
		a, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, a[:]...), d[:]...)
	}
	if !local {
		addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	}
	b = append(b, cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlvs)))
	return append(append(b, addrs...), tlvs...)
}

// awsVPCETLV is the TLV an NLB adds for PrivateLink traffic: type 0xEA,
// subtype 0x01, the VPC endpoint id.
func awsVPCETLV(id string) []byte {
	v := append([]byte{0x01}, id...)
	return append(binary.BigEndian.AppendUint16([]byte{0xEA}, uint16(len(v))), v...)
}

// TestProxyProtocolThroughBinary runs a pool whose frontend has
// "bindModifier": "accept-proxy" and checks what the backend sees as
// X-Forwarded-For: the client address from a CLB's version 1 header or an
// NLB's version 2 header (IPv4, IPv6, with the PrivateLink TLV), for every
// request on the connection; the socket's address for an NLB health
// check's LOCAL header. A connection without a header, or with a malformed
// one, is closed unanswered and nothing reaches the backend; a silent
// connection is dropped after the header timeout without holding others.
func TestProxyProtocolThroughBinary(t *testing.T) {
	t.Parallel()
	bs := startCustomers(t, 1, nil)
	cfg, port, _ := seedWithAddresses(t, addrsOf(bs))
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pool map[string]any
	if err := json.Unmarshal(raw, &pool); err != nil {
		t.Fatal(err)
	}
	pool["haproxy"].(map[string]any)["frontends"].([]any)[0].(map[string]any)["bindModifier"] = "accept-proxy"
	raw, _ = json.Marshal(pool)
	if err := os.WriteFile(cfg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	be := bs[0]
	seen := func() (int, string) {
		be.mu.Lock()
		defer be.mu.Unlock()
		if len(be.headers) == 0 {
			return 0, ""
		}
		return len(be.headers), strings.Join(be.headers[len(be.headers)-1].Values("X-Forwarded-For"), ",")
	}

	// A silent client first: it must not hold up the others.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentSince := time.Now()

	dst := netip.MustParseAddrPort("10.0.1.15:80")
	cases := []struct {
		name, header, wantXFF string
	}{
		{"v1 TCP4 (CLB)", "PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n", "198.51.100.22"},
		{"v1 TCP6", "PROXY TCP6 2001:db8::21f:5bff:febf:ce22 2001:db8::1 35646 80\r\n", "2001:db8::21f:5bff:febf:ce22"},
		{"v2 TCP4 (NLB)", string(proxyV2(false, netip.MustParseAddrPort("203.0.113.9:41000"), dst, nil)), "203.0.113.9"},
		{"v2 TCP4 with the PrivateLink TLV", string(proxyV2(false, netip.MustParseAddrPort("192.0.2.77:41001"), dst, awsVPCETLV("vpce-0123456789abcdef0"))), "192.0.2.77"},
		{"v2 TCP6", string(proxyV2(false, netip.MustParseAddrPort("[2001:db8::99]:41002"), netip.MustParseAddrPort("[2001:db8::1]:80"), nil)), "2001:db8::99"},
		{"v2 LOCAL (NLB health check)", string(proxyV2(true, netip.AddrPort{}, netip.AddrPort{}, nil)), "127.0.0.1"},
	}
	for _, tc := range cases {
		start := time.Now()
		c, br := dialRaw(t, addr)
		io.WriteString(c, tc.header)
		for i := range 2 { // the address holds for the whole connection
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s, request %d: %v", tc.name, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if _, xff := seen(); resp.StatusCode != 200 || xff != tc.wantXFF {
				t.Errorf("%s, request %d: status %d, X-Forwarded-For %q, want %q", tc.name, i, resp.StatusCode, xff, tc.wantXFF)
			}
		}
		c.Close()
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s took %v (held up by the silent connection?)", tc.name, d)
		}
	}

	refused := []struct{ name, send string }{
		{"no header", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"malformed v1", "PROXY TCP4 not-an-address 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"truncated v2", string(proxyV2(false, netip.MustParseAddrPort("203.0.113.9:41000"), dst, nil)[:20])},
	}
	for _, tc := range refused {
		before, _ := seen()
		c, br := dialRaw(t, addr)
		io.WriteString(c, tc.send)
		if tc.name == "truncated v2" {
			c.CloseWrite() // the rest never comes
		}
		got, _ := io.ReadAll(br) // EOF or a reset: either way, no answer
		if len(got) != 0 {
			t.Errorf("%s: answered %q", tc.name, got)
		}
		if n, _ := seen(); n != before {
			t.Errorf("%s: the backend got a request", tc.name)
		}
	}

	// The silent connection is closed after the 3 s header timeout.
	silent.SetReadDeadline(time.Now().Add(6 * time.Second))
	n, err := silent.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Errorf("silent connection: read %d %v, want it closed by edgeproxy", n, err)
	}
	if d := time.Since(silentSince); d < 2500*time.Millisecond || d > 5*time.Second {
		t.Errorf("silent connection closed after %v, want about 3s", d)
	}
	for _, want := range []string{"one is required", "is not an IP address", "unexpected EOF", "no complete header within 3s"} {
		waitFor(t, 2*time.Second, fmt.Sprintf("a log line %q for a refused connection", want), func() bool {
			return strings.Contains(p.output(), want)
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
