package discovery

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func parseAll(t testing.TB, r io.Reader, max int) ([]Event, error) {
	t.Helper()
	p := newSSEParser(r, max)
	var out []Event
	for range 10000 {
		ev, err := p.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev)
	}
	t.Fatal("parser did not stop")
	return nil, nil
}

func evs(pairs ...string) []Event {
	var out []Event
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Event{Type: pairs[i], Data: []byte(pairs[i+1])})
	}
	return out
}

func equalEvents(a, b []Event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Event
	}{
		{"jetty CRLF framing", "event: status_update_event\r\ndata: {\"a\":1}\r\n\r\n", evs("status_update_event", `{"a":1}`)},
		{"LF framing", "event: x\ndata: 1\n\nevent: y\ndata: 2\n\n", evs("x", "1", "y", "2")},
		{"lone CR framing", "event: x\rdata: 1\r\r", evs("x", "1")},
		{"heartbeats between events", "\r\n\r\nevent: x\r\ndata: 1\r\n\r\n\r\n", evs("x", "1")},
		{"comments ignored", ": hello\r\nevent: x\r\n: mid\r\ndata: 1\r\n\r\n", evs("x", "1")},
		{"multi-line data joined by LF", "event: x\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n", evs("x", "{\"a\":\n1}")},
		{"no event field is message", "data: 1\n\n", evs("message", "1")},
		{"no space after colon", "event:x\ndata:1\n\n", evs("x", "1")},
		{"only one leading space removed", "data:  1\n\n", evs("message", " 1")},
		{"field without colon", "data\n\n", evs("message", "")},
		{"event without data not dispatched", "event: x\n\ndata: 1\n\n", evs("message", "1")},
		{"id and retry ignored", "id: 7\nretry: 10\nevent: x\ndata: 1\n\n", evs("x", "1")},
		{"unterminated last event dropped", "event: x\ndata: 1\n\nevent: y\ndata: 2\n", evs("x", "1")},
		{"data value keeps colons", "data: a: b\n\n", evs("message", "a: b")},
		{"leading-space field name is unknown", " event: x\ndata: 1\n\n", evs("message", "1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"whole", "byte"} {
				var r io.Reader = strings.NewReader(tc.in)
				if mode == "byte" {
					r = iotest.OneByteReader(r)
				}
				got, err := parseAll(t, r, 0)
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if !equalEvents(got, tc.want) {
					t.Errorf("%s: got %q, want %q", mode, got, tc.want)
				}
			}
		})
	}
}

// The RAML example as shown (LF) and as sent on the wire (CRLF).
func TestSSEParserMarathonExample(t *testing.T) {
	raw := string(readFixture(t, "mesosphere__marathon__docs__docs__rest-api__public__api__v2__examples__events.txt"))
	for name, in := range map[string]string{"LF": raw, "CRLF": strings.ReplaceAll(raw, "\n", "\r\n")} {
		got, err := parseAll(t, strings.NewReader(in), 0)
		if err != nil {
			t.Fatal(err)
		}
		types := []string{}
		for _, e := range got {
			types = append(types, e.Type)
			if jsonEventType(e.Data) != e.Type {
				t.Errorf("%s: data eventType %q != %q", name, jsonEventType(e.Data), e.Type)
			}
		}
		if strings.Join(types, ",") != "event_stream_attached,status_update_event,status_update_event" {
			t.Errorf("%s: types %q", name, types)
		}
		if apps, _ := eventTargets(got[2].Data); !slices.Equal(apps, []string{"/test-app"}) {
			t.Errorf("%s: apps %q", name, apps)
		}
	}
}

// A heartbeat's CR arrives in one flush and its LF in the next: the event
// before it must be dispatched without waiting for the LF.
func TestSSEParserDoesNotWaitForLFAfterCR(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	p := newSSEParser(pr, 0)
	got := make(chan Event, 2)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := p.Next()
			if err != nil {
				errc <- err
				return
			}
			got <- ev
		}
	}()
	if _, err := pw.Write([]byte("event: x\r\ndata: 1\r\n\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Type != "x" || string(ev.Data) != "1" {
			t.Fatalf("got %q", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event not dispatched before the LF arrived")
	}
	if _, err := pw.Write([]byte("\nevent: y\r\ndata: 2\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.Type != "y" {
			t.Fatalf("got %q: the LF after CR was counted as a blank line", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second event not dispatched")
	}
	pw.Close()
	select {
	case err := <-errc:
		if err != io.EOF {
			t.Fatalf("err = %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF")
	}
}

func TestSSEParserLimits(t *testing.T) {
	long := "data: " + strings.Repeat("x", 200) + "\n\n"
	if _, err := parseAll(t, strings.NewReader(long), 100); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("long line: err = %v", err)
	}
	many := strings.Repeat("data: "+strings.Repeat("x", 40)+"\n", 5) + "\n"
	if _, err := parseAll(t, strings.NewReader(many), 100); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("long data: err = %v", err)
	}
	ok := "data: " + strings.Repeat("x", 90) + "\n\n"
	if got, err := parseAll(t, strings.NewReader(ok), 100); err != nil || len(got) != 1 {
		t.Errorf("at limit: %v %v", got, err)
	}
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(c.n, len(p), len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

func FuzzSSEParser(f *testing.F) {
	f.Add([]byte("event: x\r\ndata: {\"a\":1}\r\n\r\n\r\n"), uint8(1))
	f.Add([]byte("event: x\rdata: 1\r\r: c\ndata:2\n\n"), uint8(3))
	f.Add([]byte("data\n\ndata: a\r\ndata: b\r\n\r"), uint8(2))
	f.Add([]byte(" event: y\n data: z\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		whole, err1 := parseAll(t, bytes.NewReader(in), 64)
		chunked, err2 := parseAll(t, &chunkReader{b: in, n: int(split%16) + 1}, 64)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("errors differ: %v vs %v", err1, err2)
		}
		if !equalEvents(whole, chunked) {
			t.Fatalf("whole %q\nchunked %q", whole, chunked)
		}
		for _, ev := range whole {
			if strings.ContainsAny(ev.Type, "\r\n") || bytes.ContainsAny(ev.Data, "\r") {
				t.Fatalf("line break leaked into %q", ev)
			}
			if len(ev.Data) > 64 {
				t.Fatalf("data over the limit: %d", len(ev.Data))
			}
		}
	})
}

func TestEventTargets(t *testing.T) {
	tests := []struct {
		data string
		apps []string
		dep  string
	}{
		{`{"eventType":"status_update_event","appId":"/customer","taskId":"customer.1"}`, []string{"/customer"}, ""},
		{`{"eventType":"instance_changed_event","runSpecId":"/g/a"}`, []string{"/g/a"}, ""},
		{`{"eventType":"api_post_event","appDefinition":{"id":"my-app"}}`, []string{"/my-app"}, ""},
		{`{"eventType":"deployment_info","plan":{"id":"d1","steps":[{"action":"ScaleApplication","app":"/a"}]},"currentStep":{"actions":[{"type":"ScaleApplication","app":"/b"}]}}`, []string{"/a", "/b"}, "d1"},
		{`{"eventType":"deployment_step_success","plan":{"id":"d2","steps":[{"actions":[{"type":"StopApplication","app":"/c"}]}]}}`, []string{"/c"}, "d2"},
		{`{"eventType":"deployment_success","id":"d3"}`, nil, "d3"},
		{`{"eventType":"scheduler_registered_event"}`, nil, ""},
		{`not json`, nil, ""},
	}
	for _, tc := range tests {
		apps, dep := eventTargets([]byte(tc.data))
		if !slices.Equal(apps, tc.apps) || dep != tc.dep {
			t.Errorf("%s: %q %q, want %q %q", tc.data, apps, dep, tc.apps, tc.dep)
		}
	}
}
