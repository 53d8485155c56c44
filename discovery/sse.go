package discovery

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event is one server-sent event from Marathon's /v2/events.
type Event struct {
	Type string // the SSE "event:" field (Marathon's eventType); "message" when absent
	Data []byte // the data lines joined by "\n"; Marathon sends one JSON object
}

// MaxEventBytes bounds one SSE line and one event's data. An api_post_event
// carries a whole app definition and heavy-format deployment events carry
// whole group trees, so the bound is generous.
const MaxEventBytes = 16 << 20

// ErrEventTooLarge is returned by the SSE parser for a line or an event
// longer than MaxEventBytes.
var ErrEventTooLarge = errors.New("event stream: event too large")

// sseParser reads the text/event-stream format (WHATWG HTML, "Server-sent
// events", §9.2.6 interpreting an event stream) as Jetty's EventSourceServlet
// writes it for Marathon: "event: T\r\ndata: JSON\r\n\r\n", and a heartbeat
// that is a lone "\r" flushed before its "\n".
type sseParser struct {
	r      *bufio.Reader
	max    int
	skipLF bool // the previous line ended in CR: a leading LF belongs to it
	line   []byte
	data   bytes.Buffer
	typ    []byte
}

func newSSEParser(r io.Reader, max int) *sseParser {
	if max <= 0 {
		max = MaxEventBytes
	}
	return &sseParser{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// readLine returns the next line without its terminator. Lines end in CRLF,
// LF or CR; a CR at the end of one read followed by LF in the next counts
// once. It never blocks waiting to see whether an LF follows a CR.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		if p.skipLF {
			b, err := p.r.ReadByte()
			if err != nil {
				return nil, err
			}
			p.skipLF = false
			if b != '\n' {
				_ = p.r.UnreadByte()
			}
		}
		if _, err := p.r.Peek(1); err != nil {
			return nil, err // a partial last line is dropped, as the spec says
		}
		buf, _ := p.r.Peek(p.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			if len(p.line)+len(buf) > p.max {
				return nil, ErrEventTooLarge
			}
			p.line = append(p.line, buf...)
			_, _ = p.r.Discard(len(buf))
			continue
		}
		if len(p.line)+i > p.max {
			return nil, ErrEventTooLarge
		}
		p.line = append(p.line, buf[:i]...)
		p.skipLF = buf[i] == '\r'
		_, _ = p.r.Discard(i + 1)
		return p.line, nil
	}
}

// Next returns the next dispatched event. Comments (":..."), heartbeats
// (empty lines with no pending data), "id" and "retry" fields are consumed
// silently. At the end of the stream it returns io.EOF (or the read error);
// an event not terminated by a blank line is discarded.
func (p *sseParser) Next() (Event, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			p.data.Reset()
			p.typ = p.typ[:0]
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if p.data.Len() == 0 {
				p.typ = p.typ[:0]
				continue
			}
			data := bytes.Clone(p.data.Bytes())
			data = data[:len(data)-1] // drop the final "\n"
			ev := Event{Type: string(p.typ), Data: data}
			if ev.Type == "" {
				ev.Type = "message"
			}
			p.data.Reset()
			p.typ = p.typ[:0]
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			p.typ = append(p.typ[:0], value...)
		case "data":
			if p.data.Len()+len(value)+1 > p.max {
				p.data.Reset()
				return Event{}, fmt.Errorf("%w (data over %d bytes)", ErrEventTooLarge, p.max)
			}
			p.data.Write(value)
			p.data.WriteByte('\n')
		}
		// "id", "retry" and unknown fields are ignored: Marathon sends none
		// and supports no Last-Event-ID, so every reconnect resyncs anyway.
	}
}
