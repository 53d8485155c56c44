package discovery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// EventTypes are the Marathon event types the Watcher subscribes to: every
// event that can change an app's tasks, their ports, their health or the
// app definition itself (reference §3.3/§3.5). Filtering needs Marathon
// 1.3.7+; older versions ignore event_type and send everything.
var EventTypes = []string{
	"status_update_event",           // task state changed (primary trigger)
	"health_status_changed_event",   // a health check flipped
	"instance_health_changed_event", // instance-level health (1.4+)
	"api_post_event",                // app created/updated/deleted through the API
	"app_terminated_event",          // app removed
	"deployment_success",            // end of a deployment
	"deployment_failed",
	"deployment_step_success",
	"deployment_step_failure",
}

// EventStream is an open GET /v2/events stream.
type EventStream struct {
	// URL is the Marathon base URL that accepted the stream.
	URL string

	body    io.ReadCloser
	cancel  context.CancelFunc
	parser  *sseParser
	idle    *time.Timer
	idleFor time.Duration
	idled   atomic.Bool
}

// Subscribe opens the event stream, filtered to eventTypes (all events when
// empty), with plan-format=light. It follows leader redirects with the
// credentials and fails over across the URLs. The stream lives until ctx
// is done, Close is called, the server closes it, or no byte arrives for
// StreamIdleTimeout.
func (c *Client) Subscribe(ctx context.Context, eventTypes []string) (*EventStream, error) {
	q := url.Values{"plan-format": {"light"}}
	for _, t := range eventTypes {
		q.Add("event_type", t) // repeated: a comma-joined value would match nothing
	}
	pathQuery := eventsPath + "?" + q.Encode()
	var es *EventStream
	err := c.each(ctx, func(ctx context.Context, base *url.URL) error {
		sctx, cancel := context.WithCancel(ctx)
		// Accept must be exactly text/event-stream: Jetty answers 405 otherwise.
		resp, err := c.send(sctx, c.stream, base, pathQuery, "text/event-stream")
		if err != nil {
			cancel()
			return err
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			resp.Body.Close()
			cancel()
			return fmt.Errorf("GET %q: content type %q, want text/event-stream", redact(base, eventsPath), ct)
		}
		es = newEventStream(resp, cancel, c.idle)
		es.URL = base.Redacted()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return es, nil
}

func newEventStream(resp *http.Response, cancel context.CancelFunc, idle time.Duration) *EventStream {
	es := &EventStream{body: resp.Body, cancel: cancel, idleFor: idle}
	es.idle = time.AfterFunc(idle, func() {
		es.idled.Store(true)
		cancel()
	})
	es.parser = newSSEParser(idleReader{es}, MaxEventBytes)
	return es
}

// idleReader re-arms the idle timer on every byte received.
type idleReader struct{ es *EventStream }

func (r idleReader) Read(p []byte) (int, error) {
	n, err := r.es.body.Read(p)
	if n > 0 {
		r.es.idle.Reset(r.es.idleFor)
	}
	return n, err
}

// Next blocks for the next event. It returns an error when the stream ends
// (io.EOF when the server closed it cleanly), goes idle, or is closed. The
// idle timer runs while the stream is not being read, so a consumer must
// keep calling Next.
func (s *EventStream) Next() (Event, error) {
	ev, err := s.parser.Next()
	if err != nil {
		if s.idled.Load() {
			return Event{}, fmt.Errorf("event stream: no data for %s", s.idleFor)
		}
		return Event{}, fmt.Errorf("event stream: %w", err)
	}
	if ev.Type == "message" {
		// Not Marathon's framing; fall back to the JSON's own eventType.
		if t := jsonEventType(ev.Data); t != "" {
			ev.Type = t
		}
	}
	return ev, nil
}

// Close ends the stream. It is safe to call more than once.
func (s *EventStream) Close() error {
	s.idle.Stop()
	s.cancel()
	return s.body.Close()
}
