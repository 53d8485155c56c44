package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// httpConn is a minimal HTTP/1.1 keep-alive client connection for the load
// generators: it writes prepared request heads and reads responses without
// allocating per request, counting body bytes. It understands exactly what
// nginx and the two proxies send: Content-Length or chunked bodies.
type httpConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte // upload body chunk
}

var errClosed = errors.New("server closed the connection")

func dialHTTP(addr string, d *net.Dialer) (*httpConn, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 5 * time.Second}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &httpConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// abort closes the connection with a reset (SO_LINGER 0), which leaves no
// TIME_WAIT socket behind on the client side.
func (h *httpConn) abort() {
	if tc, ok := h.c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	h.c.Close()
}

// response is what one exchange returned.
type response struct {
	status int
	bytes  int64 // head and body bytes read
	close  bool  // the server will close the connection after it
}

// do writes head, then bodyLen zero bytes as the body, and reads the
// response.
func (h *httpConn) do(head []byte, bodyLen int64) (response, error) {
	if bodyLen == 0 {
		if _, err := h.c.Write(head); err != nil {
			return response{}, err
		}
	} else {
		if h.buf == nil {
			h.buf = make([]byte, 256<<10)
		}
		if _, err := h.c.Write(head); err != nil {
			return response{}, err
		}
		for left := bodyLen; left > 0; {
			n := int64(len(h.buf))
			if left < n {
				n = left
			}
			if _, err := h.c.Write(h.buf[:n]); err != nil {
				return response{}, err
			}
			left -= n
		}
	}
	return h.readResponse()
}

func (h *httpConn) readResponse() (response, error) {
	var resp response
	line, err := h.r.ReadSlice('\n')
	if err != nil {
		if err == io.EOF && len(line) == 0 {
			return resp, errClosed
		}
		return resp, err
	}
	resp.bytes += int64(len(line))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return resp, fmt.Errorf("bad status line %q", line)
	}
	resp.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return resp, fmt.Errorf("bad status line %q", line)
	}
	if line[7] == '0' {
		resp.close = true // HTTP/1.0 without keep-alive
	}
	length, chunked := int64(-1), false
	for {
		line, err = h.r.ReadSlice('\n')
		if err != nil {
			return resp, err
		}
		resp.bytes += int64(len(line))
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return resp, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(value, "close") {
				resp.close = true
			}
		}
	}
	switch {
	case resp.status == 204 || resp.status == 304 || resp.status/100 == 1:
	case chunked:
		n, err := h.discardChunked()
		resp.bytes += n
		if err != nil {
			return resp, err
		}
	case length >= 0:
		n, err := h.r.Discard(int(length))
		resp.bytes += int64(n)
		if err != nil {
			return resp, err
		}
	default: // delimited by close
		n, err := io.Copy(io.Discard, h.r)
		resp.bytes += n
		resp.close = true
		if err != nil {
			return resp, err
		}
	}
	return resp, nil
}

func (h *httpConn) discardChunked() (int64, error) {
	var total int64
	for {
		line, err := h.r.ReadSlice('\n')
		if err != nil {
			return total, err
		}
		total += int64(len(line))
		sz, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return total, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers up to the empty line
				line, err := h.r.ReadSlice('\n')
				if err != nil {
					return total, err
				}
				total += int64(len(line))
				if len(line) <= 2 {
					return total, nil
				}
			}
		}
		d, err := h.r.Discard(int(n) + 2)
		total += int64(d)
		if err != nil {
			return total, err
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// getHead is a keep-alive GET request head; Host is the same for every
// proxy so that requests are byte-identical.
func getHead(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: edgeproxy-bench\r\nAccept: */*\r\n\r\n")
}

func putHead(path string, n int64) []byte {
	return []byte("PUT " + path + " HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: edgeproxy-bench\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.FormatInt(n, 10) + "\r\n\r\n")
}

// sourceDialer dials from the loopback address src. IP_BIND_ADDRESS_NO_PORT
// defers the choice of the local port to connect(), so each source address
// has its own range of ephemeral ports per destination.
func sourceDialer(src string) *net.Dialer {
	return &net.Dialer{
		Timeout:   5 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				const ipBindAddressNoPort = 24 // linux/in.h
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return errors.Join(err, serr)
		},
	}
}
