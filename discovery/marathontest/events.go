package marathontest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// subscriber is one attached /v2/events client.
type subscriber struct {
	types  map[string]bool // empty: everything
	ch     chan []byte     // framed events
	done   chan struct{}   // closed to drop the connection
	remote string
}

// maxOutstanding mirrors --event_stream_max_outstanding_messages (1024):
// since Marathon 1.8 a consumer that falls that far behind is disconnected.
const maxOutstanding = 1024

// emitLocked frames and queues an event for every subscriber whose filter
// accepts it. It must run under s.mu.
func (s *Server) emitLocked(eventType string, payload map[string]any) {
	payload["eventType"] = eventType
	if _, ok := payload["timestamp"]; !ok {
		payload["timestamp"] = ts(s.now())
	}
	data, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("marathontest: event %q: %v", eventType, err))
	}
	// Jetty's EventSourceServlet framing, CRLF line ends (reference §3.2).
	frame := []byte("event: " + eventType + "\r\ndata: " + string(data) + "\r\n\r\n")
	s.eventsEmitted++
	for sub := range s.subs {
		if len(sub.types) > 0 && !sub.types[eventType] {
			continue
		}
		select {
		case sub.ch <- frame:
		default:
			s.dropLocked(sub)
		}
	}
}

func (s *Server) dropLocked(sub *subscriber) {
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.done)
	}
}

// Emit sends an arbitrary event to the attached streams (eventType and
// timestamp are added unless present).
func (s *Server) Emit(eventType string, payload map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := make(map[string]any, len(payload)+2)
	for k, v := range payload {
		cp[k] = v
	}
	s.emitLocked(eventType, cp)
}

// DropEventStreams closes every attached event stream, as a Marathon
// leader abdication or a proxy timeout does.
func (s *Server) DropEventStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		s.dropLocked(sub)
	}
}

// EventSubscribers returns the number of attached event streams.
func (s *Server) EventSubscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// serveEvents is GET /v2/events (HttpEventStreamServlet + Jetty's
// EventSourceServlet): Accept must be exactly text/event-stream (else
// 405), event_type filters, the body is unbounded and delimited by the
// connection close, and a heartbeat "\r" + "\n" is flushed every
// Options.Heartbeat.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	ok := false
	for _, a := range r.Header.Values("Accept") {
		if a == "text/event-stream" {
			ok = true
		}
	}
	if !ok {
		w.Header().Set("Content-Type", "text/html;charset=ISO-8859-1")
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, "<html><body><h2>HTTP ERROR: 405</h2><p>Problem accessing /v2/events. Reason:<pre>    HTTP method GET is not supported by this URL</pre></p></body></html>\n")
		return
	}
	sub := &subscriber{types: map[string]bool{}, ch: make(chan []byte, maxOutstanding), done: make(chan struct{}), remote: r.RemoteAddr}
	for _, t := range r.URL.Query()["event_type"] {
		sub.types[t] = true
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	s.subs[sub] = struct{}{}
	s.emitLocked("event_stream_attached", map[string]any{"remoteAddress": r.RemoteAddr})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.dropLocked(sub)
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream;charset=utf-8")
	// Jetty disables chunking and closes the connection to end the body.
	w.Header().Set("Transfer-Encoding", "identity")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	hb := time.NewTicker(s.opts.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.done:
			return
		case frame := <-sub.ch:
			if _, err := w.Write(frame); err != nil || rc.Flush() != nil {
				return
			}
		case <-hb.C:
			// Two flushes, exactly as Jetty's heartbeat does.
			if _, err := w.Write([]byte{'\r'}); err != nil || rc.Flush() != nil {
				return
			}
			if _, err := w.Write([]byte{'\n'}); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// The event payloads below follow core/event/Events.scala as documented in
// event-bus.md; the fixtures test keeps them in step with real captures.

func (s *Server) statusUpdateLocked(a *app, t *task, status string) {
	ips := []any{map[string]any{"ipAddress": t.ip, "protocol": "IPv4"}}
	s.emitLocked("status_update_event", map[string]any{
		"slaveId":     s.agentID,
		"taskId":      t.id,
		"taskStatus":  status,
		"message":     "",
		"appId":       a.id,
		"host":        t.host,
		"ipAddresses": ips,
		"ports":       orEmptyInts(t.ports),
		"version":     ts(t.version),
	})
	condition := map[string]string{StateStaging: "Staging", StateRunning: "Running", StateKilling: "Killing", StateKilled: "Killed"}[status]
	s.emitLocked("instance_changed_event", map[string]any{
		"instanceId":     instanceID(t),
		"condition":      condition,
		"runSpecId":      a.id,
		"agentId":        s.agentID,
		"host":           t.host,
		"runSpecVersion": ts(t.version),
	})
}

func (s *Server) healthChangedLocked(a *app, t *task, alive bool) {
	s.emitLocked("health_status_changed_event", map[string]any{
		"appId":      a.id,
		"instanceId": instanceID(t),
		"version":    ts(t.version),
		"alive":      alive,
	})
	s.emitLocked("instance_health_changed_event", map[string]any{
		"instanceId":     instanceID(t),
		"runSpecId":      a.id,
		"runSpecVersion": ts(t.version),
		"healthy":        alive,
	})
}

func (s *Server) apiPostLocked(a *app, uri, clientIP string) {
	s.emitLocked("api_post_event", map[string]any{
		"clientIp":      clientIP,
		"uri":           uri,
		"appDefinition": s.appDefinitionJSON(a),
	})
}

func deploymentPlan(id, appID, action string, version time.Time) map[string]any {
	return map[string]any{
		"id":      id,
		"version": ts(version),
		"steps":   []any{map[string]any{"actions": []any{map[string]any{"type": action, "app": appID}}}},
	}
}

func (s *Server) deploymentInfoLocked(id, appID, action string, version time.Time) {
	s.emitLocked("deployment_info", map[string]any{
		"plan":        deploymentPlan(id, appID, action, version),
		"currentStep": map[string]any{"actions": []any{map[string]any{"type": action, "app": appID}}},
	})
}

func (s *Server) deploymentDoneLocked(id, appID, action string, version time.Time) {
	s.emitLocked("deployment_step_success", map[string]any{
		"plan":        deploymentPlan(id, appID, action, version),
		"currentStep": map[string]any{"actions": []any{map[string]any{"type": action, "app": appID}}},
	})
	s.emitLocked("deployment_success", map[string]any{"id": id})
}
