// Package proxyproto reads the PROXY protocol header (versions 1 and 2) that a
// TCP load balancer puts in front of a connection to pass on the client's
// address: a Classic Load Balancer TCP/SSL listener sends version 1, a Network
// Load Balancer with proxy_protocol_v2.enabled sends version 2, including on
// its health-check connections (as an address-less LOCAL header).
//
// The parsers are strict: anything the specification (haproxy
// doc/proxy-protocol.txt) does not allow is an error, and a connection with a
// malformed header is closed rather than guessed at. NewListener wraps a
// net.Listener so that the header is read lazily, in the connection's own
// goroutine and under a deadline, so one slow or silent client cannot hold up
// Accept for the others.
package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Command is the PROXY protocol v2 command (the low nibble of byte 13).
type Command uint8

// Commands defined by the specification, section 2.2.
const (
	// CmdLocal marks a connection the proxy made on its own behalf, such as
	// an NLB health check: the receiver uses the real socket addresses.
	CmdLocal Command = 0x0
	// CmdProxy marks a relayed connection: the header carries the client's
	// addresses.
	CmdProxy Command = 0x1
)

// String returns "LOCAL" or "PROXY".
func (c Command) String() string {
	switch c {
	case CmdLocal:
		return "LOCAL"
	case CmdProxy:
		return "PROXY"
	}
	return fmt.Sprintf("Command(%#x)", uint8(c))
}

// TLV types from the specification, section 2.2.7, and the AWS extension.
const (
	TypeALPN      = 0x01 // application protocol negotiated by TLS (e.g. "h2")
	TypeAuthority = 0x02 // host name from SNI or similar, UTF-8
	TypeCRC32C    = 0x03 // CRC32c of the whole header; checked by ReadHeader
	TypeNOOP      = 0x04 // padding, ignored
	TypeUniqueID  = 0x05 // opaque connection id, at most 128 bytes
	TypeSSL       = 0x20 // TLS details, with sub-TLVs
	TypeNetNS     = 0x30 // network namespace name
	// TypeAWS is PP2_TYPE_AWS: the first value byte is a subtype.
	TypeAWS = 0xEA
	// AWSSubtypeVPCEndpointID is PP2_SUBTYPE_AWS_VPCE_ID: the rest of the
	// value is the PrivateLink VPC endpoint id ("vpce-…").
	AWSSubtypeVPCEndpointID = 0x01
)

// TLV is one type-length-value record from a version 2 header. Value aliases
// memory owned by the Header.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Command is CmdProxy for relayed connections and CmdLocal for the
	// proxy's own (health check) connections. Version 1 headers are always
	// CmdProxy.
	Command Command
	// Source and Destination are the client and the address it connected
	// to, as seen by the proxy. Both are zero when Local is true.
	Source, Destination netip.AddrPort
	// Local reports that the header carries no usable address (v2 LOCAL,
	// v2 AF_UNSPEC or AF_UNIX, v1 UNKNOWN): use the socket's own addresses.
	Local bool
	// TLVs holds the version 2 TLVs in wire order, NOOP and CRC32C
	// included (the checksum has already been verified).
	TLVs []TLV
}

// TLV returns the value of the first TLV of type typ.
func (h *Header) TLV(typ byte) ([]byte, bool) {
	for _, t := range h.TLVs {
		if t.Type == typ {
			return t.Value, true
		}
	}
	return nil, false
}

// ALPN returns the ALPN TLV ("h2", "http/1.1"), or "" when absent.
func (h *Header) ALPN() string {
	v, _ := h.TLV(TypeALPN)
	return string(v)
}

// Authority returns the authority TLV (usually the TLS SNI host name), or ""
// when absent.
func (h *Header) Authority() string {
	v, _ := h.TLV(TypeAuthority)
	return string(v)
}

// AWSVPCEndpointID returns the VPC endpoint id an NLB adds for traffic that
// came through AWS PrivateLink, or "" when absent.
func (h *Header) AWSVPCEndpointID() string {
	for _, t := range h.TLVs {
		if t.Type == TypeAWS && len(t.Value) > 0 && t.Value[0] == AWSSubtypeVPCEndpointID {
			return string(t.Value[1:])
		}
	}
	return ""
}

// Errors returned by ReadHeader. Details are wrapped around them with %w.
var (
	// ErrNoHeader means the stream does not start with a PROXY protocol
	// signature. ReadHeader has consumed nothing in that case.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrInvalid means the stream starts with a PROXY protocol signature but
	// the header is malformed. The connection should be closed.
	ErrInvalid = errors.New("proxyproto: invalid header")
)

var (
	sigV1 = []byte("PROXY ")
	// sigV2 is the 12-byte v2 signature "\r\n\r\n\x00\r\nQUIT\n"
	// (specification section 2.2).
	sigV2 = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}
)

// ReadHeader reads a version 1 or version 2 PROXY protocol header from r and
// leaves r positioned at the first byte after it.
//
// It peeks one byte at a time while matching a signature, so it only waits
// for more input while what it has seen is still a valid signature prefix;
// it returns ErrNoHeader, without consuming anything, as soon as the stream
// cannot be a PROXY header. r must have a buffer of at least 16 bytes (the
// default bufio size is fine). Malformed headers give an error wrapping
// ErrInvalid; I/O errors are returned wrapped, with io.EOF in the middle of
// a header turned into io.ErrUnexpectedEOF.
func ReadHeader(r *bufio.Reader) (*Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	switch first[0] {
	case sigV1[0]:
		ok, err := matchSignature(r, sigV1)
		if err != nil || !ok {
			return nil, err
		}
		return readV1(r)
	case sigV2[0]:
		ok, err := matchSignature(r, sigV2)
		if err != nil || !ok {
			return nil, err
		}
		return readV2(r)
	}
	return nil, ErrNoHeader
}

// matchSignature reports whether r starts with sig, peeking no further than
// the first mismatch. It returns ErrNoHeader on a mismatch.
func matchSignature(r *bufio.Reader, sig []byte) (bool, error) {
	for n := 2; n <= len(sig); n++ {
		b, err := r.Peek(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return false, fmt.Errorf("proxyproto: reading signature: %w", err)
		}
		if b[n-1] != sig[n-1] {
			return false, ErrNoHeader
		}
	}
	return true, nil
}

// unexpectedEOF turns io.EOF into io.ErrUnexpectedEOF: inside a header, the
// end of the stream is always premature.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
