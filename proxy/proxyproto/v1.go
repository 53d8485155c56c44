package proxyproto

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
)

// maxV1Len is the longest version 1 line, CRLF included (specification
// section 2.1: "a receiver ... must read at most 107 bytes").
const maxV1Len = 107

// readV1 reads a version 1 header. The caller has matched "PROXY " without
// consuming it.
//
// Grammar (specification section 2.1), single spaces only, CRLF terminated:
//
//	"PROXY" SP "TCP4" SP ipv4 SP ipv4 SP port SP port CRLF
//	"PROXY" SP "TCP6" SP ipv6 SP ipv6 SP port SP port CRLF
//	"PROXY" SP "UNKNOWN" [anything but CRLF] CRLF
func readV1(r *bufio.Reader) (*Header, error) {
	var buf [maxV1Len]byte
	n := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("proxyproto: reading v1 header: %w", unexpectedEOF(err))
		}
		buf[n] = c
		n++
		if c == '\n' {
			break
		}
		if n == maxV1Len {
			return nil, fmt.Errorf("%w: v1 header longer than %d bytes", ErrInvalid, maxV1Len)
		}
	}
	line := buf[:n]
	if n < 2 || line[n-2] != '\r' {
		return nil, fmt.Errorf("%w: v1 header %q does not end in CRLF", ErrInvalid, line)
	}
	line = line[:n-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, fmt.Errorf("%w: v1 header %q contains a stray CR", ErrInvalid, line)
	}
	fields := bytes.Split(line, []byte{' '})
	// fields[0] is "PROXY", matched by the caller.
	if len(fields) < 2 {
		return nil, fmt.Errorf("%w: v1 header %q has no protocol", ErrInvalid, line)
	}
	h := &Header{Version: 1, Command: CmdProxy}
	switch string(fields[1]) {
	case "UNKNOWN":
		// "the receiver must ignore anything presented before the CRLF".
		h.Local = true
		return h, nil
	case "TCP4", "TCP6":
	default:
		return nil, fmt.Errorf("%w: v1 protocol %q is not TCP4, TCP6 or UNKNOWN", ErrInvalid, fields[1])
	}
	if len(fields) != 6 {
		return nil, fmt.Errorf("%w: v1 header %q: want 6 single-space separated fields, got %d", ErrInvalid, line, len(fields))
	}
	v6 := fields[1][3] == '6'
	src, err := parseV1Addr(fields[2], v6)
	if err != nil {
		return nil, fmt.Errorf("%w: v1 source address: %w", ErrInvalid, err)
	}
	dst, err := parseV1Addr(fields[3], v6)
	if err != nil {
		return nil, fmt.Errorf("%w: v1 destination address: %w", ErrInvalid, err)
	}
	sport, err := parseV1Port(fields[4])
	if err != nil {
		return nil, fmt.Errorf("%w: v1 source port: %w", ErrInvalid, err)
	}
	dport, err := parseV1Port(fields[5])
	if err != nil {
		return nil, fmt.Errorf("%w: v1 destination port: %w", ErrInvalid, err)
	}
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, nil
}

// parseV1Addr parses an address of the family named by the protocol field.
// netip already rejects IPv4 octets with leading zeros; zones are refused.
func parseV1Addr(b []byte, v6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", b)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone", b)
	}
	if v6 != a.Is6() {
		fam := "TCP4"
		if v6 {
			fam = "TCP6"
		}
		return netip.Addr{}, fmt.Errorf("%q does not match protocol %s", b, fam)
	}
	return a, nil
}

// parseV1Port parses a decimal port 0..65535 without sign or leading zeros.
func parseV1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("%q is not a port number", b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a port number", b)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("%q is out of range", b)
	}
	return uint16(n), nil
}
