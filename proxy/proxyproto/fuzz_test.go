package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// checkParse is the property both fuzzers assert: no panic; on success the
// header is self-consistent, the reader sits just after it, and parsing is
// deterministic; ErrNoHeader consumes nothing.
func checkParse(t *testing.T, data []byte, version int) {
	br := bufio.NewReader(bytes.NewReader(data))
	h, err := ReadHeader(br)
	left, _ := io.ReadAll(br)
	if err != nil {
		if h != nil {
			t.Fatalf("header %+v returned with error %v", h, err)
		}
		if errors.Is(err, ErrNoHeader) && !bytes.Equal(left, data) {
			t.Fatalf("ErrNoHeader consumed %d bytes", len(data)-len(left))
		}
		return
	}
	consumed := len(data) - len(left)
	if h.Version != version {
		// The other parser's input reached this fuzzer; still must be sane.
		version = h.Version
	}
	switch version {
	case 1:
		if consumed > maxV1Len || !bytes.HasSuffix(data[:consumed], []byte("\r\n")) {
			t.Fatalf("v1 consumed %q", data[:consumed])
		}
	case 2:
		if want := 16 + int(binary.BigEndian.Uint16(data[14:16])); consumed != want {
			t.Fatalf("v2 consumed %d bytes, header says %d", consumed, want)
		}
	default:
		t.Fatalf("version %d", h.Version)
	}
	if h.Local == (h.Source.IsValid() && h.Destination.IsValid()) {
		t.Fatalf("Local=%v with source %v destination %v", h.Local, h.Source, h.Destination)
	}
	if h.Command != CmdProxy && h.Command != CmdLocal {
		t.Fatalf("command %v", h.Command)
	}
	h2, err := ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil || !reflect.DeepEqual(h, h2) {
		t.Fatalf("second parse differs: %+v %v", h2, err)
	}
}

func FuzzV1(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nGET / HTTP/1.1\r\n",
		"PROXY TCP6 2001:DB8::21f:5bff:febf:ce22:8a2e 2001:DB8::12f:8baa:eafc:ce29:6b2e 35646 80\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, 1) })
}

func FuzzV2(f *testing.F) {
	f.Add(mustHex("0d0a0d0a000d0a515549540a 20 00 0000"))
	f.Add(mustHex("0d0a0d0a000d0a515549540a 21 11 0026 cb007107 0a00010f 8b3e 0050 ea 0017 01" +
		"767063652d30313233343536373839616263646566300a"))
	f.Add(withCRC(v2(0x21, 0x11, inet)))
	f.Add(v2(0x21, 0x21, make([]byte, 36), tlv(TypeALPN, []byte("h2")), tlv(TypeSSL, []byte{1, 0, 0, 0, 0})))
	f.Add(v2(0x21, 0x31, make([]byte, lenUnix)))
	f.Add(v2(0x20, 0x11, inet, tlv(TypeNOOP, nil)))
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, data, 2) })
}
