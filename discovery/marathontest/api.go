package marathontest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// route serves the /v2 API of an authorised request.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/v2/events" && r.Method == http.MethodGet:
		s.serveEvents(w, r)
	case p == "/v2/apps" && r.Method == http.MethodGet:
		s.listApps(w, r)
	case p == "/v2/apps" && r.Method == http.MethodPost:
		s.createApp(w, r)
	case p == "/v2/tasks" && r.Method == http.MethodGet:
		s.listTasks(w, r)
	case p == "/v2/info" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{
			"name": "marathon", "version": "1.8.0-marathontest", "elected": true, "leader": s.Addr(),
			"marathon_config": map[string]any{"features": []string{"vips", "task_killing"}},
		})
	case strings.HasPrefix(p, "/v2/apps/"):
		s.appRoute(w, r, strings.TrimPrefix(p, "/v2/apps"))
	default:
		message(w, http.StatusNotFound, "Not found: %s", p)
	}
}

func embeds(r *http.Request) (tasks, readiness bool) {
	for _, e := range r.URL.Query()["embed"] {
		// Prefixes apps., app., group.apps. or none are all accepted.
		switch {
		case strings.HasSuffix(e, "tasks"):
			tasks = true
		case strings.HasSuffix(e, "readiness"):
			readiness = true
		}
	}
	return tasks, readiness
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	withTasks, withReadiness := embeds(r)
	idFilter := r.URL.Query().Get("id") // substring match, as Marathon's
	s.mu.Lock()
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		if strings.Contains(id, idFilter) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	list := []any{}
	for _, id := range ids {
		list = append(list, s.appJSON(s.apps[id], withTasks, withReadiness, false))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"apps": list})
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	s.mu.Lock()
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := []any{}
	for _, id := range ids {
		a := s.apps[id]
		for _, t := range a.tasks {
			if status != "" && !strings.EqualFold("TASK_"+status, t.state) {
				continue
			}
			list = append(list, s.taskJSON(a, t, true))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"tasks": list})
}

// appRoute serves /v2/apps/{id}, /v2/apps/{id}/tasks and
// /v2/apps/{id}/tasks/{taskId}; rest starts with "/".
func (s *Server) appRoute(w http.ResponseWriter, r *http.Request, rest string) {
	id, taskID, tasks := rest, "", false
	if i := strings.LastIndex(rest, "/tasks/"); i >= 0 {
		id, taskID = rest[:i], rest[i+len("/tasks/"):]
	} else if before, ok := strings.CutSuffix(rest, "/tasks"); ok {
		id, tasks = before, true
	}
	id = absID(strings.TrimSuffix(id, "/"))
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil && !(r.Method == http.MethodPut && taskID == "" && !tasks) {
		message(w, http.StatusNotFound, "App '%s' does not exist", id)
		return
	}
	switch {
	case taskID != "" && r.Method == http.MethodDelete:
		scale, _ := strconv.ParseBool(r.URL.Query().Get("scale"))
		t, depID, err := s.killTaskLocked(a, taskID, scale)
		if err != nil {
			message(w, http.StatusNotFound, "Task '%s' does not exist", taskID)
			return
		}
		if scale {
			writeJSON(w, http.StatusOK, map[string]any{"deploymentId": depID, "version": ts(a.version)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"task": s.taskJSON(a, t, false)})
	case tasks && r.Method == http.MethodGet:
		list := []any{}
		for _, t := range a.tasks {
			list = append(list, s.taskJSON(a, t, true))
		}
		writeJSON(w, http.StatusOK, map[string]any{"tasks": list})
	case taskID == "" && !tasks && r.Method == http.MethodGet:
		// Marathon always embeds tasks, counts, deployments here.
		_, withReadiness := embeds(r)
		writeJSON(w, http.StatusOK, map[string]any{"app": s.appJSON(a, true, withReadiness, false)})
	case taskID == "" && !tasks && r.Method == http.MethodPut:
		s.updateApp(w, r, id, a)
	case taskID == "" && !tasks && r.Method == http.MethodDelete:
		depID := s.removeAppLocked(a, clientIP(r))
		writeJSON(w, http.StatusOK, map[string]any{"deploymentId": depID, "version": ts(s.now())})
	default:
		message(w, http.StatusMethodNotAllowed, "Method not allowed")
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		message(w, http.StatusBadRequest, "%v", err)
		return
	}
	def, err := ParseAppDefinition(raw)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/", "errors": []string{err.Error()}}}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.addAppLocked(def, nil, clientIP(r))
	if errors.Is(err, errAppExists) {
		message(w, http.StatusConflict, "An app with id [%s] already exists.", absID(def.ID))
		return
	}
	if err != nil {
		message(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	w.Header().Set("Location", "/v2/apps"+a.id)
	writeJSON(w, http.StatusCreated, s.appJSON(a, false, false, false))
}

// updateApp is PUT /v2/apps/{id}: {"instances": N} scales (what `dcos
// marathon app update id instances=N` sends); any other field replaces the
// definition and restarts the tasks.
func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, id string, a *app) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		message(w, http.StatusBadRequest, "%v", err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		message(w, http.StatusBadRequest, "Invalid JSON: %v", err)
		return
	}
	scaleOnly := true
	for k := range fields {
		if k != "instances" && k != "id" {
			scaleOnly = false
		}
	}
	if a == nil || !scaleOnly {
		// AppUpdate semantics: the given fields replace those of the
		// current definition.
		var def AppDefinition
		if a != nil {
			cur, _ := json.Marshal(a.def)
			_ = json.Unmarshal(cur, &def)
			n := a.instances
			def.Instances = &n
		}
		if err := json.Unmarshal(raw, &def); err != nil {
			message(w, http.StatusUnprocessableEntity, "%v", err)
			return
		}
		def.ID = id
		if a == nil {
			na, err := s.addAppLocked(def, nil, clientIP(r))
			if err != nil {
				message(w, http.StatusUnprocessableEntity, "%v", err)
				return
			}
			writeJSON(w, http.StatusCreated, map[string]any{"deploymentId": newUUID(), "version": ts(na.version)})
			return
		}
		depID, err := s.replaceAppLocked(a, def, clientIP(r))
		if err != nil {
			message(w, http.StatusUnprocessableEntity, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"deploymentId": depID, "version": ts(a.version)})
		return
	}
	var n int
	if err := json.Unmarshal(fields["instances"], &n); err != nil || n < 0 {
		message(w, http.StatusUnprocessableEntity, "instances must be a non-negative integer")
		return
	}
	depID := s.scaleLocked(a, n, clientIP(r))
	writeJSON(w, http.StatusOK, map[string]any{"deploymentId": depID, "version": ts(a.version)})
}

// deployment tracks one running deployment until its steps are done.
type deployment struct {
	id      string
	app     *app
	action  string
	pending int
	version time.Time
	done    func() // optional, run when the deployment finishes
}

func (s *Server) startDeploymentLocked(a *app, action string) *deployment {
	d := &deployment{id: newUUID(), app: a, action: action, pending: 1, version: a.version}
	a.deployments = append(a.deployments, d.id)
	s.deploymentInfoLocked(d.id, a.id, action, d.version)
	return d
}

// stepDoneLocked marks one operation of d done (the creator holds one).
func (s *Server) stepDoneLocked(d *deployment) {
	d.pending--
	if d.pending > 0 {
		return
	}
	d.app.deployments = slices.DeleteFunc(d.app.deployments, func(x string) bool { return x == d.id })
	s.deploymentDoneLocked(d.id, d.app.id, d.action, d.version)
	if d.done != nil {
		d.done()
	}
}

// launchLocked starts one task of a, part of deployment d (may be nil).
func (s *Server) launchLocked(a *app, d *deployment) *task {
	now := s.now()
	t := s.newTask(a, now)
	a.tasks = append(a.tasks, t)
	s.statusUpdateLocked(a, t, StateStaging)
	if d != nil {
		d.pending++
	}
	s.afterLocked(s.opts.StartDelay, func() {
		if t.state != StateStaging {
			return
		}
		t.state = StateRunning
		t.started = s.now()
		s.statusUpdateLocked(a, t, StateRunning)
		if len(a.def.HealthChecks) > 0 && !s.opts.NoInitialHealth {
			t.health = &health{alive: true, firstSuccess: t.started, lastSuccess: t.started}
			s.healthChangedLocked(a, t, true)
		}
		if d != nil {
			s.stepDoneLocked(d)
		}
	})
	return t
}

// killLocked moves t to TASK_KILLING and, after KillDelay, to TASK_KILLED
// and out of the app.
func (s *Server) killLocked(a *app, t *task, d *deployment) {
	if t.state == StateKilling {
		return
	}
	t.state = StateKilling
	s.statusUpdateLocked(a, t, StateKilling)
	if d != nil {
		d.pending++
	}
	s.afterLocked(s.opts.KillDelay, func() {
		t.state = StateKilled
		s.statusUpdateLocked(a, t, StateKilled)
		a.tasks = slices.DeleteFunc(a.tasks, func(x *task) bool { return x == t })
		s.releaseTask(a, t)
		if d != nil {
			s.stepDoneLocked(d)
		}
	})
}

func (s *Server) addAppLocked(def AppDefinition, backends []string, clientIP string) (*app, error) {
	nd, mode, err := s.normalize(def)
	if err != nil {
		return nil, err
	}
	if _, ok := s.apps[nd.ID]; ok {
		return nil, fmt.Errorf("%w: %q", errAppExists, nd.ID)
	}
	now := s.now()
	a := &app{id: nd.ID, def: nd, mode: mode, instances: *nd.Instances, version: now, lastScaling: now, lastConfig: now, backends: slices.Clone(backends)}
	s.apps[a.id] = a
	s.apiPostLocked(a, "/v2/apps", clientIP)
	d := s.startDeploymentLocked(a, "StartApplication")
	for range a.instances {
		s.launchLocked(a, d)
	}
	s.stepDoneLocked(d)
	return a, nil
}

// liveTasks are the tasks not being killed, oldest first.
func liveTasks(a *app) []*task {
	var out []*task
	for _, t := range a.tasks {
		if t.state != StateKilling && t.state != StateKilled {
			out = append(out, t)
		}
	}
	return out
}

func (s *Server) scaleLocked(a *app, n int, clientIP string) string {
	now := s.now()
	a.instances = n
	a.version, a.lastScaling = now, now
	s.apiPostLocked(a, "/v2/apps"+a.id, clientIP)
	d := s.startDeploymentLocked(a, "ScaleApplication")
	live := liveTasks(a)
	for i := len(live); i < n; i++ {
		s.launchLocked(a, d)
	}
	for i := len(live) - 1; i >= n; i-- { // killSelection YOUNGEST_FIRST
		s.killLocked(a, live[i], d)
	}
	s.stepDoneLocked(d)
	return d.id
}

func (s *Server) replaceAppLocked(a *app, def AppDefinition, clientIP string) (string, error) {
	nd, mode, err := s.normalize(def)
	if err != nil {
		return "", err
	}
	now := s.now()
	old := liveTasks(a)
	a.def, a.mode, a.instances = nd, mode, *nd.Instances
	a.version, a.lastConfig = now, now
	s.apiPostLocked(a, "/v2/apps"+a.id, clientIP)
	d := s.startDeploymentLocked(a, "RestartApplication")
	for range a.instances {
		s.launchLocked(a, d)
	}
	for _, t := range old {
		s.killLocked(a, t, d)
	}
	s.stepDoneLocked(d)
	return d.id, nil
}

func (s *Server) killTaskLocked(a *app, taskID string, scale bool) (*task, string, error) {
	i := slices.IndexFunc(a.tasks, func(t *task) bool { return t.id == taskID })
	if i < 0 {
		return nil, "", errNotFound
	}
	t := a.tasks[i]
	if !scale {
		s.killLocked(a, t, nil)
		s.launchLocked(a, nil) // Marathon replaces a killed task to keep the instance count
		return t, "", nil
	}
	a.instances = max(0, a.instances-1)
	a.version, a.lastScaling = s.now(), s.now()
	d := s.startDeploymentLocked(a, "ScaleApplication")
	s.killLocked(a, t, d)
	s.stepDoneLocked(d)
	return t, d.id, nil
}

func (s *Server) removeAppLocked(a *app, clientIP string) string {
	s.apiPostLocked(a, "/v2/apps"+a.id, clientIP)
	d := s.startDeploymentLocked(a, "StopApplication")
	a.instances = 0
	d.done = func() {
		delete(s.apps, a.id)
		s.emitLocked("app_terminated_event", map[string]any{"appId": a.id})
	}
	for _, t := range liveTasks(a) {
		s.killLocked(a, t, d)
	}
	s.stepDoneLocked(d)
	return d.id
}

// AddApp creates an app as POST /v2/apps does and launches its instances.
// backends ("127.0.0.1:port") are handed to new tasks in order, and given
// back when a task is gone: such a task's host is the backend's host and its
// first host port the backend's port (in container mode the backend host is
// the container IP). Tasks without a backend get AgentHost and ports from
// the host port range.
func (s *Server) AddApp(def AppDefinition, backends []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.addAppLocked(def, backends, "127.0.0.1")
	return err
}

// AddBackends appends backend addresses to an app's pool.
func (s *Server) AddBackends(appID string, backends ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[absID(appID)]
	if a == nil {
		return fmt.Errorf("marathontest: no app %q", appID)
	}
	a.backends = append(a.backends, backends...)
	return nil
}

// Scale sets an app's instance count, as PUT /v2/apps/{id} {"instances": n}.
func (s *Server) Scale(appID string, n int) (deploymentID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[absID(appID)]
	if a == nil {
		return "", fmt.Errorf("marathontest: no app %q", appID)
	}
	if n < 0 {
		return "", fmt.Errorf("marathontest: instances %d < 0", n)
	}
	return s.scaleLocked(a, n, "127.0.0.1"), nil
}

// RemoveApp deletes an app, as DELETE /v2/apps/{id}.
func (s *Server) RemoveApp(appID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[absID(appID)]
	if a == nil {
		return fmt.Errorf("marathontest: no app %q", appID)
	}
	s.removeAppLocked(a, "127.0.0.1")
	return nil
}

// KillTask kills a task as DELETE /v2/apps/{id}/tasks/{taskId}[?scale=true].
func (s *Server) KillTask(appID, taskID string, scale bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[absID(appID)]
	if a == nil {
		return fmt.Errorf("marathontest: no app %q", appID)
	}
	_, _, err := s.killTaskLocked(a, taskID, scale)
	if err != nil {
		return fmt.Errorf("marathontest: app %q has no task %q", appID, taskID)
	}
	return nil
}

// SetTaskHealth records a health check result for a task and, when alive
// flips (or it is the first result), emits health_status_changed_event.
func (s *Server) SetTaskHealth(taskID string, alive bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		for _, t := range a.tasks {
			if t.id != taskID {
				continue
			}
			now := s.now()
			changed := t.health == nil || t.health.alive != alive
			if t.health == nil {
				t.health = &health{}
			}
			h := t.health
			h.alive = alive
			if alive {
				h.failures = 0
				h.lastSuccess = now
				if h.firstSuccess.IsZero() {
					h.firstSuccess = now
				}
			} else {
				h.failures++
				h.lastFailure = now
			}
			if changed {
				s.healthChangedLocked(a, t, alive)
			}
			return nil
		}
	}
	return fmt.Errorf("marathontest: no task %q", taskID)
}

// SimulateLeaderFailover does what a Marathon leader change looks like to a
// client: health results, kept only in the old leader's memory, are gone,
// and every event stream is dropped.
func (s *Server) SimulateLeaderFailover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		for _, t := range a.tasks {
			t.health = nil
		}
	}
	for sub := range s.subs {
		s.dropLocked(sub)
	}
}

// Tasks returns the tasks of an app in creation order.
func (s *Server) Tasks(appID string) []TaskInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[absID(appID)]
	if a == nil {
		return nil
	}
	out := make([]TaskInfo, 0, len(a.tasks))
	for _, t := range a.tasks {
		ti := TaskInfo{ID: t.id, AppID: a.id, Host: t.host, Ports: slices.Clone(t.ports), IPAddress: t.ip, State: t.state}
		if t.health != nil {
			alive := t.health.alive
			ti.Alive = &alive
		}
		out = append(out, ti)
	}
	return out
}
