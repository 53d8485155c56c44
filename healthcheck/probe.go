package healthcheck

import (
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// probe runs one check against t.checkAddr, finishing by deadline. It is
// called only from fire, so it owns t.dialer and t.buf.
func (t *Target) probe(deadline time.Time) (Result, int, error) {
	t.dialer.Deadline = deadline
	conn, err := t.dialer.DialContext(t.ctx, "tcp", t.checkAddr)
	if err != nil {
		if isTimeout(err) {
			return ResultL4Timeout, 0, err
		}
		return ResultL4Conn, 0, err
	}
	// Close with a reset rather than a FIN: at hundreds of checks a second
	// an orderly close would leave as many TIME_WAIT sockets on this host.
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if t.req == nil {
		conn.Close()
		return ResultL4OK, 0, nil
	}

	t.mu.Lock()
	if t.removed {
		t.mu.Unlock()
		conn.Close()
		return ResultL7Response, 0, net.ErrClosed
	}
	t.conn = conn
	t.mu.Unlock()

	res, code, err := t.exchange(conn, deadline)

	t.mu.Lock()
	t.conn = nil
	t.mu.Unlock()
	conn.Close()
	return res, code, err
}

// exchange sends the HTTP check request and reads the status line.
func (t *Target) exchange(conn net.Conn, deadline time.Time) (Result, int, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return ResultL7Response, 0, err
	}
	if _, err := conn.Write(t.req); err != nil {
		return failure7(err)
	}
	n := 0
	for {
		m, err := conn.Read(t.buf[n:])
		n += m
		line, complete := t.buf[:n], false
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, complete = line[:i], true
		}
		if complete || n == len(t.buf) {
			code, ok := parseStatusLine(line, complete)
			switch {
			case !ok && complete:
				return ResultL7Response, 0, errBadStatusLine
			case !ok:
				return ResultL7Response, 0, errLongStatus
			case !t.statusOK(code):
				return ResultL7Status, code, errStatus
			}
			return ResultL7OK, code, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ResultL7Response, 0, errEmptyResponse
			}
			return failure7(err)
		}
	}
}

func (t *Target) statusOK(code int) bool {
	if want := t.cfg.HTTP.ExpectStatus; want != 0 {
		return code == want
	}
	return code >= 200 && code < 400
}

func failure7(err error) (Result, int, error) {
	if isTimeout(err) {
		return ResultL7Timeout, 0, err
	}
	return ResultL7Response, 0, err
}

// isTimeout reports whether err, or an error it wraps, is a timeout. It
// walks the chain by hand so that a failed check allocates nothing more.
func isTimeout(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if te, ok := err.(interface{ Timeout() bool }); ok && te.Timeout() {
			return true
		}
	}
	return false
}

// parseStatusLine returns the status code of an HTTP/1.x status line
// (RFC 9112 section 4: HTTP-version SP 3DIGIT SP [reason-phrase]). line
// has no LF; complete reports whether it is the whole line, in which case
// a missing reason phrase, and its SP, are tolerated as many servers send
// them that way.
func parseStatusLine(line []byte, complete bool) (int, bool) {
	if complete && len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// "HTTP/1.1 200" is 12 bytes.
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' {
		return 0, false
	}
	if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' {
		return 0, false
	}
	if len(line) > 12 && line[12] != ' ' || len(line) == 12 && !complete {
		return 0, false
	}
	return int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0'), true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
