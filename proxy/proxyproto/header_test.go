package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestReadHeaderV1(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantErr  error // nil: success
		src, dst string
		local    bool
	}{
		// Examples from the CLB "enable proxy protocol" guide.
		{name: "tcp4 clb example", in: "PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n",
			src: "198.51.100.22:35646", dst: "203.0.113.7:80"},
		{name: "tcp6 clb example", in: "PROXY TCP6 2001:DB8::21f:5bff:febf:ce22:8a2e 2001:DB8::12f:8baa:eafc:ce29:6b2e 35646 80\r\n",
			src: "[2001:db8:0:21f:5bff:febf:ce22:8a2e]:35646", dst: "[2001:db8:0:12f:8baa:eafc:ce29:6b2e]:80"},
		{name: "tcp6 v4-mapped", in: "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 65535\r\n",
			src: "[::ffff:10.0.0.1]:1", dst: "[::1]:65535"},
		{name: "port zero", in: "PROXY TCP4 10.0.0.1 10.0.0.2 0 0\r\n", src: "10.0.0.1:0", dst: "10.0.0.2:0"},
		{name: "unknown", in: "PROXY UNKNOWN\r\n", local: true},
		{name: "unknown with addresses (107 bytes, the maximum)",
			in:    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			local: true},
		{name: "not a header", in: "GET / HTTP/1.1\r\n\r\n", wantErr: ErrNoHeader},
		{name: "lower case", in: "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", wantErr: ErrNoHeader},
		{name: "prefix diverges", in: "PROXIMITY\r\n", wantErr: ErrNoHeader},
		{name: "too long", in: "PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n", wantErr: ErrInvalid},
		{name: "bare LF", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", wantErr: ErrInvalid},
		{name: "stray CR", in: "PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "double space", in: "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "trailing space", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", wantErr: ErrInvalid},
		{name: "missing port", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", wantErr: ErrInvalid},
		{name: "no protocol", in: "PROXY \r\n", wantErr: ErrInvalid},
		{name: "bad protocol", in: "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "unknownx", in: "PROXY UNKNOWNX\r\n", wantErr: ErrInvalid},
		{name: "tcp4 with ipv6", in: "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "tcp6 with ipv4", in: "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", wantErr: ErrInvalid},
		{name: "ipv4 leading zero", in: "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "zone", in: "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", wantErr: ErrInvalid},
		{name: "port leading zero", in: "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", wantErr: ErrInvalid},
		{name: "port too big", in: "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", wantErr: ErrInvalid},
		{name: "port sign", in: "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", wantErr: ErrInvalid},
		{name: "hostname", in: "PROXY TCP4 example.com 5.6.7.8 1 2\r\n", wantErr: ErrInvalid},
		{name: "truncated", in: "PROXY TCP4 1.2.3.4", wantErr: io.ErrUnexpectedEOF},
		{name: "truncated signature", in: "PRO", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const rest = "GET / HTTP/1.1\r\n"
			br := bufio.NewReader(strings.NewReader(tt.in + rest))
			if errors.Is(tt.wantErr, io.ErrUnexpectedEOF) {
				br = bufio.NewReader(strings.NewReader(tt.in))
			}
			h, err := ReadHeader(br)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if errors.Is(err, ErrNoHeader) {
					all, _ := io.ReadAll(br)
					if string(all) != tt.in+rest {
						t.Errorf("ErrNoHeader consumed input: left %q", all)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadHeader: %v", err)
			}
			if h.Version != 1 || h.Command != CmdProxy || h.Local != tt.local {
				t.Errorf("header = %+v", h)
			}
			if !tt.local {
				if got := h.Source.String(); got != tt.src {
					t.Errorf("source = %s, want %s", got, tt.src)
				}
				if got := h.Destination.String(); got != tt.dst {
					t.Errorf("destination = %s, want %s", got, tt.dst)
				}
			}
			left, _ := io.ReadAll(br)
			if string(left) != rest {
				t.Errorf("left after header = %q, want %q", left, rest)
			}
		})
	}
}

// v2 builds a version 2 header: signature, ver/cmd, fam/proto, length, and
// the payload parts.
func v2(verCmd, famProto byte, parts ...[]byte) []byte {
	payload := bytes.Join(parts, nil)
	b := append([]byte{}, sigV2...)
	b = append(b, verCmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func tlv(typ byte, val []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

// inet is 10.0.0.1:52000 -> 10.0.1.15:8443 as a v2 IPv4 address block.
var inet = []byte{10, 0, 0, 1, 10, 0, 1, 15, 0xCB, 0x20, 0x20, 0xFB}

// withCRC appends a CRC32c TLV and fills it in, the way a sender does.
func withCRC(h []byte) []byte {
	h = append(h, tlv(TypeCRC32C, []byte{0, 0, 0, 0})...)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-16))
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func TestReadHeaderV2(t *testing.T) {
	// An NLB header for PrivateLink traffic, written out byte by byte:
	// signature, PROXY/v2, TCP over IPv4, length 38, 203.0.113.7:35646 ->
	// 10.0.1.15:80, TLV 0xEA len 23 subtype 0x01 "vpce-0123456789abcdef0".
	nlbVPCE := mustHex("0d0a0d0a000d0a515549540a 21 11 0026" +
		"cb007107 0a00010f 8b3e 0050" +
		"ea 0017 01" + hex.EncodeToString([]byte("vpce-0123456789abcdef0")))
	// The address-less header an NLB sends on health-check connections.
	nlbHealth := mustHex("0d0a0d0a000d0a515549540a 20 00 0000")

	crcOK := withCRC(v2(0x21, 0x11, inet))
	crcBad := append([]byte{}, crcOK...)
	crcBad[16] ^= 1 // source address changed after the checksum was made

	ipv6 := v2(0x21, 0x21,
		netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice(),
		[]byte{0x01, 0xBB, 0x00, 0x50})

	tests := []struct {
		name     string
		in       []byte
		wantErr  error
		src, dst string
		local    bool
		cmd      Command
		check    func(t *testing.T, h *Header)
	}{
		{name: "nlb privatelink", in: nlbVPCE, cmd: CmdProxy, src: "203.0.113.7:35646", dst: "10.0.1.15:80",
			check: func(t *testing.T, h *Header) {
				if got := h.AWSVPCEndpointID(); got != "vpce-0123456789abcdef0" {
					t.Errorf("VPC endpoint id = %q", got)
				}
			}},
		{name: "nlb health check", in: nlbHealth, cmd: CmdLocal, local: true},
		{name: "local with ipv4 block and tlv", in: v2(0x20, 0x11, inet, tlv(TypeNOOP, []byte{0, 0})), cmd: CmdLocal, local: true,
			check: func(t *testing.T, h *Header) {
				if len(h.TLVs) != 1 || h.TLVs[0].Type != TypeNOOP {
					t.Errorf("TLVs = %+v", h.TLVs)
				}
			}},
		{name: "local ignores unknown family", in: v2(0x20, 0x44, []byte{1, 2, 3}), cmd: CmdLocal, local: true},
		{name: "ipv4 udp", in: v2(0x21, 0x12, inet), cmd: CmdProxy, src: "10.0.0.1:52000", dst: "10.0.1.15:8443"},
		{name: "ipv6", in: ipv6, cmd: CmdProxy, src: "[2001:db8::1]:443", dst: "[2001:db8::2]:80"},
		{name: "proxy unspec", in: v2(0x21, 0x00), cmd: CmdProxy, local: true},
		{name: "unix", in: v2(0x21, 0x31, make([]byte, lenUnix)), cmd: CmdProxy, local: true},
		{name: "alpn authority noop unique-id ssl", cmd: CmdProxy, src: "10.0.0.1:52000", dst: "10.0.1.15:8443",
			in: v2(0x21, 0x11, inet, tlv(TypeALPN, []byte("h2")), tlv(TypeAuthority, []byte("example.com")),
				tlv(TypeNOOP, nil), tlv(TypeUniqueID, []byte("abc")),
				tlv(TypeSSL, append([]byte{0x01, 0, 0, 0, 0}, tlv(0x21, []byte("TLSv1.3"))...)), tlv(0xE0, []byte{9})),
			check: func(t *testing.T, h *Header) {
				if h.ALPN() != "h2" || h.Authority() != "example.com" {
					t.Errorf("ALPN %q authority %q", h.ALPN(), h.Authority())
				}
				if v, ok := h.TLV(0xE0); !ok || !bytes.Equal(v, []byte{9}) {
					t.Errorf("unknown TLV not kept: %v %v", v, ok)
				}
				if len(h.TLVs) != 6 || h.AWSVPCEndpointID() != "" {
					t.Errorf("TLVs = %+v", h.TLVs)
				}
			}},
		{name: "crc32c ok", in: crcOK, cmd: CmdProxy, src: "10.0.0.1:52000", dst: "10.0.1.15:8443"},
		{name: "crc32c mismatch", in: crcBad, wantErr: ErrInvalid},
		{name: "crc32c wrong length", in: v2(0x21, 0x11, inet, tlv(TypeCRC32C, []byte{1, 2})), wantErr: ErrInvalid},
		{name: "two crc32c", in: v2(0x21, 0x11, inet, tlv(TypeCRC32C, []byte{1, 2, 3, 4}), tlv(TypeCRC32C, []byte{1, 2, 3, 4})), wantErr: ErrInvalid},
		{name: "version 1 in binary", in: v2(0x11, 0x11, inet), wantErr: ErrInvalid},
		{name: "version 3", in: v2(0x31, 0x11, inet), wantErr: ErrInvalid},
		{name: "command 2", in: v2(0x22, 0x11, inet), wantErr: ErrInvalid},
		{name: "bad family", in: v2(0x21, 0x41, inet), wantErr: ErrInvalid},
		{name: "bad transport", in: v2(0x21, 0x13, inet), wantErr: ErrInvalid},
		{name: "unspec family with transport", in: v2(0x21, 0x01, inet), wantErr: ErrInvalid},
		{name: "short ipv4 block", in: v2(0x21, 0x11, inet[:11]), wantErr: ErrInvalid},
		{name: "short ipv6 block", in: v2(0x21, 0x21, make([]byte, 35)), wantErr: ErrInvalid},
		{name: "tlv header cut", in: v2(0x21, 0x11, inet, []byte{TypeNOOP, 0}), wantErr: ErrInvalid},
		{name: "tlv overrun", in: v2(0x21, 0x11, inet, []byte{TypeNOOP, 0, 5, 1}), wantErr: ErrInvalid},
		{name: "empty authority", in: v2(0x21, 0x11, inet, tlv(TypeAuthority, nil)), wantErr: ErrInvalid},
		{name: "authority not utf8", in: v2(0x21, 0x11, inet, tlv(TypeAuthority, []byte{0xff})), wantErr: ErrInvalid},
		{name: "empty alpn", in: v2(0x21, 0x11, inet, tlv(TypeALPN, nil)), wantErr: ErrInvalid},
		{name: "unique id too long", in: v2(0x21, 0x11, inet, tlv(TypeUniqueID, make([]byte, 129))), wantErr: ErrInvalid},
		{name: "ssl too short", in: v2(0x21, 0x11, inet, tlv(TypeSSL, []byte{1, 0, 0, 0})), wantErr: ErrInvalid},
		{name: "ssl sub-tlv overrun", in: v2(0x21, 0x11, inet, tlv(TypeSSL, []byte{1, 0, 0, 0, 0, 0x21, 0, 9})), wantErr: ErrInvalid},
		{name: "aws without subtype", in: v2(0x21, 0x11, inet, tlv(TypeAWS, nil)), wantErr: ErrInvalid},
		{name: "aws empty vpce", in: v2(0x21, 0x11, inet, tlv(TypeAWS, []byte{AWSSubtypeVPCEndpointID})), wantErr: ErrInvalid},
		{name: "aws vpce binary", in: v2(0x21, 0x11, inet, tlv(TypeAWS, []byte{AWSSubtypeVPCEndpointID, 'v', 0})), wantErr: ErrInvalid},
		{name: "truncated fixed part", in: nlbVPCE[:14], wantErr: io.ErrUnexpectedEOF},
		{name: "truncated payload", in: nlbVPCE[:30], wantErr: io.ErrUnexpectedEOF},
		{name: "signature diverges at NUL", in: []byte("\r\n\r\nGET / HTTP/1.1\r\n"), wantErr: ErrNoHeader},
		{name: "leading CRLF before a request", in: []byte("\r\nGET / HTTP/1.1\r\n"), wantErr: ErrNoHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest := []byte("after")
			in := append(append([]byte{}, tt.in...), rest...)
			if errors.Is(tt.wantErr, io.ErrUnexpectedEOF) {
				in = tt.in
			}
			br := bufio.NewReader(bytes.NewReader(in))
			h, err := ReadHeader(br)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadHeader: %v", err)
			}
			if h.Version != 2 || h.Command != tt.cmd || h.Local != tt.local {
				t.Errorf("header = %+v", h)
			}
			if !tt.local {
				if got := h.Source.String(); got != tt.src {
					t.Errorf("source = %s, want %s", got, tt.src)
				}
				if got := h.Destination.String(); got != tt.dst {
					t.Errorf("destination = %s, want %s", got, tt.dst)
				}
			} else if h.Source.IsValid() || h.Destination.IsValid() {
				t.Errorf("local header has addresses %v %v", h.Source, h.Destination)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
			left, _ := io.ReadAll(br)
			if !bytes.Equal(left, rest) {
				t.Errorf("left after header = %q, want %q", left, rest)
			}
		})
	}
}

func TestCommandString(t *testing.T) {
	for c, want := range map[Command]string{CmdLocal: "LOCAL", CmdProxy: "PROXY", 7: "Command(0x7)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", c, got, want)
		}
	}
}
