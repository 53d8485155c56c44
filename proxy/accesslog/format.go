package accesslog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Both formatters append one line, newline included, and allocate nothing.

// jsonTime is log/slog's JSON time layout: RFC 3339 with milliseconds.
const jsonTime = "2006-01-02T15:04:05.000Z07:00"

// appendJSON appends e as one JSON object. The keys are fixed and always
// present (uri_truncated only when true), so a line parses into one schema.
func appendJSON(b []byte, e *Entry, loc *time.Location) []byte {
	b = append(b, `{"time":"`...)
	b = e.Start.In(loc).AppendFormat(b, jsonTime)
	b = append(b, `","level":"INFO","msg":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","frontend":`...)
	b = appendJSONString(b, e.Frontend)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, e.Backend)
	b = append(b, `,"server":`...)
	b = appendJSONString(b, e.Server)
	b = append(b, `,"client_ip":"`...)
	if e.ClientIP.IsValid() {
		b = e.ClientIP.AppendTo(b)
	}
	b = append(b, `","client_port":`...)
	b = strconv.AppendInt(b, int64(e.ClientPort), 10)
	b = append(b, `,"method":`...)
	b = appendJSONBytes(b, e.Method)
	b = append(b, `,"uri":`...)
	b = appendJSONBytes(b, e.URI)
	b = append(b, `,"proto":`...)
	b = appendJSONBytes(b, e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, e.BytesReceived, 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, e.BytesSent, 10)
	b = append(b, `,"wait_ms":`...)
	b = appendMillis(b, e.Wait)
	b = append(b, `,"connect_ms":`...)
	b = appendMillis(b, e.Connect)
	b = append(b, `,"response_ms":`...)
	b = appendMillis(b, e.Response)
	b = append(b, `,"total_ms":`...)
	b = appendMillis(b, e.Total)
	b = append(b, `,"termination_state":`...)
	b = appendJSONString(b, termination(e))
	b = append(b, `,"retries":`...)
	b = strconv.AppendInt(b, int64(e.Retries), 10)
	b = append(b, `,"redispatched":`...)
	b = strconv.AppendBool(b, e.Redispatched)
	b = append(b, `,"fe_conns":`...)
	b = strconv.AppendInt(b, e.FrontendConns, 10)
	b = append(b, `,"srv_conns":`...)
	b = strconv.AppendInt(b, e.ServerConns, 10)
	if e.Truncated {
		b = append(b, `,"uri_truncated":true`...)
	}
	return append(b, "}\n"...)
}

func termination(e *Entry) string {
	if len(e.Termination) != 2 {
		return "--"
	}
	return e.Termination
}

// appendMillis writes d in milliseconds with microsecond precision, or -1
// for a step never reached.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 {
		return append(b, "-1"...)
	}
	us := d.Microseconds()
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as log/slog's JSON handler does: '"', '\\'
// and control characters escaped, U+2028 and U+2029 escaped (JavaScript
// line terminators), invalid UTF-8 replaced by U+FFFD, HTML characters kept.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < ' ' || c == '"' || c == '\\' {
				b = append(b, s[start:i]...)
				b = appendJSONEscape(b, rune(c))
				start = i + 1
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = appendJSONEscape(b, r)
			start = i + w
		}
		i += w
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONBytes is appendJSONString for bytes. (Ranging over string(p)
// would copy p, on the heap when it is long.)
func appendJSONBytes(b []byte, p []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(p); {
		if c := p[i]; c < utf8.RuneSelf {
			if c < ' ' || c == '"' || c == '\\' {
				b = append(b, p[start:i]...)
				b = appendJSONEscape(b, rune(c))
				start = i + 1
			}
			i++
			continue
		}
		r, w := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			b = append(b, p[start:i]...)
			b = appendJSONEscape(b, r)
			start = i + w
		}
		i += w
	}
	b = append(b, p[start:]...)
	return append(b, '"')
}

func appendJSONEscape(b []byte, r rune) []byte {
	switch r {
	case '"', '\\':
		return append(b, '\\', byte(r))
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case utf8.RuneError:
		return append(b, `\ufffd`...)
	case '\u2028':
		return append(b, `\u2028`...)
	case '\u2029':
		return append(b, `\u2029`...)
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
}

// httplogTime is HAProxy's date in logs (%tr).
const httplogTime = "02/Jan/2006:15:04:05.000"

// appendHTTPLog appends e as HAProxy's "option httplog" line:
//
//	client_ip:port [date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes_read
//	  - - termination_state actconn/feconn/beconn/srv_conn/retries
//	  srv_queue/backend_queue "request"
//
// There are no captured cookies or headers. Values edgeproxy does not keep
// are 0: TR (the clock starts when the head has been read; -1 for a bad
// request), actconn, beconn, and both queues (it has none). Without a
// backend the frontend's name stands for it, and <NOSRV> for a missing
// server, as HAProxy writes them.
func appendHTTPLog(b []byte, e *Entry, loc *time.Location) []byte {
	if e.ClientIP.IsValid() {
		b = e.ClientIP.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(e.ClientPort), 10)
	b = append(b, " ["...)
	b = e.Start.In(loc).AppendFormat(b, httplogTime)
	b = append(b, "] "...)
	b = appendHTTPLogName(b, e.Frontend)
	b = append(b, ' ')
	if e.Backend != "" {
		b = appendHTTPLogName(b, e.Backend)
	} else {
		b = appendHTTPLogName(b, e.Frontend)
	}
	b = append(b, '/')
	if e.Server != "" {
		b = appendHTTPLogName(b, e.Server)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	if e.Kind == BadRequest {
		b = append(b, " -1/"...)
	} else {
		b = append(b, " 0/"...)
	}
	b = appendMillisInt(b, e.Wait)
	b = append(b, '/')
	b = appendMillisInt(b, e.Connect)
	b = append(b, '/')
	b = appendMillisInt(b, e.Response)
	b = append(b, '/')
	b = appendMillisInt(b, e.Total)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.BytesSent, 10)
	b = append(b, " - - "...)
	b = append(b, termination(e)...)
	b = append(b, "-- 0/"...)
	b = strconv.AppendInt(b, e.FrontendConns, 10)
	b = append(b, "/0/"...)
	b = strconv.AppendInt(b, e.ServerConns, 10)
	b = append(b, '/')
	if e.Redispatched {
		b = append(b, '+')
	}
	b = strconv.AppendInt(b, int64(e.Retries), 10)
	b = append(b, ` 0/0 "`...)
	if e.Kind == BadRequest {
		b = append(b, "<BADREQ>"...)
	} else {
		b = appendHTTPLogRequest(b, e.Method)
		b = append(b, ' ')
		b = appendHTTPLogRequest(b, e.URI)
		b = append(b, ' ')
		b = appendHTTPLogRequest(b, e.Proto)
	}
	return append(b, "\"\n"...)
}

// appendMillisInt writes d in whole milliseconds, as HAProxy's timers are.
func appendMillisInt(b []byte, d time.Duration) []byte {
	if d < 0 {
		return append(b, "-1"...)
	}
	return strconv.AppendInt(b, d.Milliseconds(), 10)
}

// appendHTTPLogRequest writes bytes of the quoted request line, encoding
// as '#' and two hex digits what would break the line or the quoting:
// control characters, '"', '#' and bytes outside ASCII, as HAProxy's log
// encoding does.
func appendHTTPLogRequest(b []byte, p []byte) []byte {
	for _, c := range p {
		if c < ' ' || c >= 0x7f || c == '"' || c == '#' {
			b = append(b, '#', upperHex[c>>4], upperHex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendHTTPLogName writes a frontend, backend or server name, encoding
// spaces too so that the line still splits into its fields ("-" if empty).
func appendHTTPLogName(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '#' {
			b = append(b, '#', upperHex[c>>4], upperHex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

const upperHex = "0123456789ABCDEF"
