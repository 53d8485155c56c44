package proxyproto

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"unicode/utf8"
)

// Version 2 address families and transports (specification section 2.2,
// byte 13). Only the seven combinations listed there are valid.
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	lenInet  = 12  // src[4] dst[4] sport[2] dport[2]
	lenInet6 = 36  // src[16] dst[16] sport[2] dport[2]
	lenUnix  = 216 // src[108] dst[108]

	maxUniqueIDLen = 128 // section 2.2.5
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// readV2 reads a version 2 header. The caller has matched the 12-byte
// signature without consuming it.
func readV2(r *bufio.Reader) (*Header, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("proxyproto: reading v2 header: %w", unexpectedEOF(err))
	}
	verCmd, famProto := fixed[12], fixed[13]
	if v := verCmd >> 4; v != 2 {
		return nil, fmt.Errorf("%w: v2 signature with version %d", ErrInvalid, v)
	}
	cmd := Command(verCmd & 0x0F)
	if cmd != CmdLocal && cmd != CmdProxy {
		return nil, fmt.Errorf("%w: v2 command %#x", ErrInvalid, uint8(cmd))
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	// One allocation holds the whole header, so the CRC32c can be computed
	// over it and TLV values can alias it.
	whole := make([]byte, 16+n)
	copy(whole, fixed[:])
	if _, err := io.ReadFull(r, whole[16:]); err != nil {
		return nil, fmt.Errorf("proxyproto: reading %d-byte v2 payload: %w", n, unexpectedEOF(err))
	}
	body := whole[16:]
	h := &Header{Version: 2, Command: cmd}

	addrLen, famOK := familyLen(famProto)
	if cmd == CmdLocal {
		// "the receiver must accept this connection as valid and must use
		// the real connection endpoints and discard the protocol block
		// including the family (which is ignored)". TLVs are still read
		// when the family says where they start.
		h.Local = true
		if !famOK || n < addrLen {
			return h, nil
		}
		if err := parseTLVs(h, whole, 16+addrLen); err != nil {
			return nil, err
		}
		return h, nil
	}
	if !famOK {
		return nil, fmt.Errorf("%w: v2 family/transport byte %#02x", ErrInvalid, famProto)
	}
	if n < addrLen {
		return nil, fmt.Errorf("%w: v2 length %d is shorter than the %d-byte address block", ErrInvalid, n, addrLen)
	}
	switch famProto >> 4 {
	case famInet:
		src := netip.AddrFrom4([4]byte(body[0:4]))
		dst := netip.AddrFrom4([4]byte(body[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[10:12]))
	case famInet6:
		src := netip.AddrFrom16([16]byte(body[0:16]))
		dst := netip.AddrFrom16([16]byte(body[16:32]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[34:36]))
	default:
		// AF_UNSPEC: "the receiver ... may use the real endpoint
		// addresses". AF_UNIX paths have no netip form; use the socket's.
		h.Local = true
	}
	if err := parseTLVs(h, whole, 16+addrLen); err != nil {
		return nil, err
	}
	return h, nil
}

// familyLen returns the address block length for a family/transport byte and
// whether the byte is one of the seven the specification allows.
func familyLen(famProto byte) (int, bool) {
	switch famProto {
	case 0x00:
		return 0, true
	case 0x11, 0x12:
		return lenInet, true
	case 0x21, 0x22:
		return lenInet6, true
	case 0x31, 0x32:
		return lenUnix, true
	}
	return 0, false
}

// parseTLVs parses the TLVs in whole[off:], validates the ones with a known
// format and checks the CRC32c when present.
func parseTLVs(h *Header, whole []byte, off int) error {
	crcAt := -1
	for off < len(whole) {
		if len(whole)-off < 3 {
			return fmt.Errorf("%w: v2 TLV at offset %d: %d trailing bytes, want at least 3", ErrInvalid, off, len(whole)-off)
		}
		typ := whole[off]
		l := int(binary.BigEndian.Uint16(whole[off+1 : off+3]))
		start := off + 3
		if l > len(whole)-start {
			return fmt.Errorf("%w: v2 TLV %#02x at offset %d: length %d overruns the header by %d bytes", ErrInvalid, typ, off, l, l-(len(whole)-start))
		}
		val := whole[start : start+l : start+l]
		if err := checkTLV(typ, val); err != nil {
			return fmt.Errorf("%w: v2 TLV %#02x: %w", ErrInvalid, typ, err)
		}
		if typ == TypeCRC32C {
			if crcAt >= 0 {
				return fmt.Errorf("%w: v2 header has two CRC32c TLVs", ErrInvalid)
			}
			crcAt = start
		}
		h.TLVs = append(h.TLVs, TLV{Type: typ, Value: val})
		off = start + l
	}
	if crcAt >= 0 {
		// Section 2.2.3: the checksum covers the whole header with the
		// checksum field itself set to zero; it is sent in network order.
		want := binary.BigEndian.Uint32(whole[crcAt : crcAt+4])
		c := crc32.Update(0, crc32c, whole[:crcAt])
		c = crc32.Update(c, crc32c, []byte{0, 0, 0, 0})
		c = crc32.Update(c, crc32c, whole[crcAt+4:])
		if c != want {
			return fmt.Errorf("%w: v2 CRC32c mismatch: header says %#08x, computed %#08x", ErrInvalid, want, c)
		}
	}
	return nil
}

// checkTLV validates the TLVs whose format the specification (or AWS) fixes.
// Unknown types are kept as they are.
func checkTLV(typ byte, val []byte) error {
	switch typ {
	case TypeCRC32C:
		if len(val) != 4 {
			return fmt.Errorf("CRC32c value is %d bytes, want 4", len(val))
		}
	case TypeAuthority:
		if len(val) == 0 || !utf8.Valid(val) {
			return fmt.Errorf("authority %q is not a non-empty UTF-8 string", val)
		}
	case TypeALPN:
		if len(val) == 0 {
			return fmt.Errorf("empty ALPN")
		}
	case TypeUniqueID:
		if len(val) > maxUniqueIDLen {
			return fmt.Errorf("unique id is %d bytes, limit %d", len(val), maxUniqueIDLen)
		}
	case TypeSSL:
		// client(1) verify(4) then sub-TLVs that must tile the rest.
		if len(val) < 5 {
			return fmt.Errorf("SSL value is %d bytes, want at least 5", len(val))
		}
		for sub := val[5:]; len(sub) > 0; {
			if len(sub) < 3 {
				return fmt.Errorf("SSL sub-TLV: %d trailing bytes", len(sub))
			}
			l := int(binary.BigEndian.Uint16(sub[1:3]))
			if l > len(sub)-3 {
				return fmt.Errorf("SSL sub-TLV %#02x overruns its parent", sub[0])
			}
			sub = sub[3+l:]
		}
	case TypeAWS:
		if len(val) == 0 {
			return fmt.Errorf("AWS TLV without subtype")
		}
		if val[0] == AWSSubtypeVPCEndpointID {
			id := val[1:]
			if len(id) == 0 {
				return fmt.Errorf("empty VPC endpoint id")
			}
			for _, c := range id {
				if c <= ' ' || c >= 0x7F {
					return fmt.Errorf("VPC endpoint id %q is not printable ASCII", id)
				}
			}
		}
	}
	return nil
}
