package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// WatcherOptions tunes a Watcher. Zero values mean the documented default.
type WatcherOptions struct {
	// Debounce is the quiet period after a relevant event before /v2/apps
	// is fetched again, so that a burst costs one fetch. It is also the
	// minimum gap between the end of one fetch and an event-triggered next
	// one. Default 20ms.
	Debounce time.Duration
	// MaxDelay bounds the wait from the first event of a burst to its
	// fetch, however long the burst lasts. Default 200ms.
	MaxDelay time.Duration
	// ResyncInterval forces a full resync this often even without events,
	// as a safety net for lost events. Default 5m.
	ResyncInterval time.Duration
	// HealthGrace keeps a task's last known health while its app still has
	// health checks but the task's results are gone, which is what a
	// Marathon leader failover looks like (results live only in the
	// leader's memory). Default 2m.
	HealthGrace time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff of
	// stream reconnects and failed fetches. Defaults 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Logf receives one line per state change (stream up/down, sync failing
	// or recovered, newly skipped apps/tasks). Default: discard.
	Logf func(format string, args ...any)
	// Now is the clock for Status and health grace. Default time.Now.
	Now func() time.Time
}

// Status is the Watcher's state, for the stats page.
type Status struct {
	Synced         bool      // at least one /v2/apps fetch succeeded
	LastSync       time.Time // time of the last successful fetch
	LastError      string    // last fetch error, else last stream error; "" when all is well
	Connected      bool      // the event stream is attached
	EventsReceived uint64    // events read from the stream, relevant or not
	Syncs          uint64    // successful fetches
	URL            string    // the Marathon URL in use
	// Stale is true while the endpoint sets may lag behind Marathon: before
	// the first sync, while the event stream is down, or while fetches fail.
	Stale bool
	// Staleness is how long the sets have been stale (0 when not stale).
	Staleness time.Duration
}

// Watcher keeps endpoint sets of registered selectors current. Create it
// with NewWatcher, register selectors with Watch, and call Run once.
type Watcher struct {
	c    *Client
	o    WatcherOptions
	logf Logf
	now  func() time.Time

	notify   chan struct{}
	syncedCh chan struct{}

	mu            sync.Mutex
	watches       []*watch
	started       bool
	pendFetch     bool      // fetch as soon as possible
	pendDebounce  bool      // fetch when the debounce window closes
	pendFirst     time.Time // first event of the pending burst (monotonic clock)
	pendLast      time.Time // last event of the pending burst
	pendRecompute bool      // re-resolve the current snapshot (new watch)
	lastFetchEnd  time.Time
	apps          []App
	synced        bool
	lastSync      time.Time
	syncErr       string
	streamErr     string
	streamState   int // 0 unknown, 1 up, 2 down
	events        uint64
	syncs         uint64
	stale         bool
	staleSince    time.Time
	graceWake     time.Time // when a health grace period ends (monotonic clock)

	ignoredDeps map[string]bool // deployments that concern no watched app

	health      map[string]*healthMemo // owned by the sync goroutine
	decodeLines map[string]bool        // decode problems logged at the last fetch (sync goroutine)
}

type watch struct {
	sel       Selector
	fn        func([]Endpoint)
	cancelled bool // under Watcher.mu
	// Owned by the sync goroutine:
	last      []Endpoint
	delivered bool
	logged    map[string]bool
}

type healthMemo struct {
	healthy    bool
	vanishedAt time.Time // zero while the task has results
}

const (
	streamUnknown = iota
	streamUp
	streamDown
)

// stableStream is how long a stream must live for the reconnect backoff to
// start again from BackoffMin.
const stableStream = 30 * time.Second

// NewWatcher returns a Watcher reading from c.
func NewWatcher(c *Client, opts WatcherOptions) *Watcher {
	o := opts
	if o.Debounce <= 0 {
		o.Debounce = 20 * time.Millisecond
	}
	if o.MaxDelay < o.Debounce {
		o.MaxDelay = max(200*time.Millisecond, o.Debounce)
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 5 * time.Minute
	}
	if o.HealthGrace <= 0 {
		o.HealthGrace = 2 * time.Minute
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 500 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(30*time.Second, o.BackoffMin)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Watcher{
		c:           c,
		o:           o,
		logf:        o.Logf,
		now:         now,
		notify:      make(chan struct{}, 1),
		syncedCh:    make(chan struct{}),
		stale:       true,
		staleSince:  now(),
		health:      map[string]*healthMemo{},
		ignoredDeps: map[string]bool{},
	}
}

// Watch registers sel. fn receives the full endpoint set after the first
// successful sync (possibly empty), then again only when the set changed. It
// is called from the Watcher's goroutine, one call at a time across all
// watches, so it must not block for long; the slice is shared and must not be
// modified. A failed or garbled Marathon answer never produces a call: the
// last good set stays. cancel stops further calls (a call already running
// may finish after cancel returns); it may be called from within fn.
func (w *Watcher) Watch(sel Selector, fn func([]Endpoint)) (cancel func()) {
	wt := &watch{sel: sel, fn: fn}
	w.mu.Lock()
	w.watches = append(w.watches, wt)
	if w.synced {
		w.pendRecompute = true
	}
	w.mu.Unlock()
	w.poke()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		wt.cancelled = true
		w.watches = slices.DeleteFunc(w.watches, func(x *watch) bool { return x == wt })
	}
}

// Synced is closed after the first successful sync, once the callbacks of
// the watches registered by then have run.
func (w *Watcher) Synced() <-chan struct{} { return w.syncedCh }

// Status returns a snapshot of the Watcher's state.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Status{
		Synced:         w.synced,
		LastSync:       w.lastSync,
		LastError:      w.syncErr,
		Connected:      w.streamState == streamUp,
		EventsReceived: w.events,
		Syncs:          w.syncs,
		URL:            w.c.URL(),
		Stale:          w.stale,
	}
	if st.LastError == "" {
		st.LastError = w.streamErr
	}
	if w.stale {
		st.Staleness = max(0, w.now().Sub(w.staleSince))
	}
	return st
}

// Run streams events and syncs until ctx is done, then returns nil once all
// its goroutines have stopped. It may be called only once.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("discovery: Watcher.Run called twice")
	}
	w.started = true
	w.pendFetch = true
	w.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { w.streamLoop(ctx) })
	w.syncLoop(ctx)
	wg.Wait()
	return nil
}

func (w *Watcher) poke() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// updateStaleLocked recomputes Stale and remembers when it started.
func (w *Watcher) updateStaleLocked() {
	stale := !w.synced || w.streamState != streamUp || w.syncErr != ""
	if stale && !w.stale {
		w.staleSince = w.now()
	}
	w.stale = stale
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// streamLoop keeps one event stream open, reconnecting with backoff.
func (w *Watcher) streamLoop(ctx context.Context) {
	backoff := w.o.BackoffMin
	for ctx.Err() == nil {
		es, err := w.c.Subscribe(ctx, EventTypes)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.streamFailed(err)
			if !sleepCtx(ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, w.o.BackoffMax)
			continue
		}
		w.streamConnected(es.URL)
		start := time.Now()
		for {
			ev, err2 := es.Next()
			if err2 != nil {
				err = err2
				break
			}
			w.onEvent(ev)
		}
		es.Close()
		if ctx.Err() != nil {
			return
		}
		w.streamFailed(err)
		if time.Since(start) >= stableStream {
			backoff = w.o.BackoffMin
		}
		if !sleepCtx(ctx, jitter(backoff)) {
			return
		}
		backoff = min(backoff*2, w.o.BackoffMax)
	}
}

func (w *Watcher) streamConnected(url string) {
	w.mu.Lock()
	w.streamState = streamUp
	w.streamErr = ""
	w.pendFetch = true // full resync on every (re)connect: no event replay exists
	w.updateStaleLocked()
	w.mu.Unlock()
	w.logf.printf("discovery: event stream attached to %q", url)
	w.poke()
}

func (w *Watcher) streamFailed(err error) {
	w.mu.Lock()
	changed := w.streamState != streamDown
	w.streamState = streamDown
	w.streamErr = err.Error()
	w.updateStaleLocked()
	w.mu.Unlock()
	if changed {
		w.logf.printf("discovery: event stream down, keeping the last known endpoints and retrying: %v", err)
	}
}

// onEvent schedules a debounced fetch when the event may concern a watched
// app. Events that name apps are relevant only if a watch selects one of
// them; a deployment whose plan named only unwatched apps is remembered so
// that its id-only deployment_success/failed is ignored too. Events that
// name nothing are relevant.
func (w *Watcher) onEvent(ev Event) {
	apps, depID := eventTargets(ev.Data)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events++
	if len(w.watches) == 0 {
		return
	}
	relevant := len(apps) == 0
	for _, id := range apps {
		for _, wt := range w.watches {
			if wt.sel.MatchesApp(id) {
				relevant = true
				break
			}
		}
	}
	switch {
	case depID != "" && len(apps) > 0 && !relevant:
		if len(w.ignoredDeps) >= maxIgnoredDeployments {
			clear(w.ignoredDeps)
		}
		w.ignoredDeps[depID] = true
	case depID != "" && len(apps) == 0 && w.ignoredDeps[depID]:
		relevant = false
		if ev.Type == "deployment_success" || ev.Type == "deployment_failed" {
			delete(w.ignoredDeps, depID)
		}
	}
	if !relevant {
		return
	}
	now := time.Now()
	if !w.pendDebounce {
		w.pendDebounce = true
		w.pendFirst = now
	}
	w.pendLast = now
	w.poke()
}

// maxIgnoredDeployments bounds the memory of unwatched deployments.
const maxIgnoredDeployments = 1024

// syncLoop owns fetching and delivering. It is the only goroutine that
// calls fns.
func (w *Watcher) syncLoop(ctx context.Context) {
	ticker := time.NewTicker(w.o.ResyncInterval)
	defer ticker.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	backoff := w.o.BackoffMin
	var retryAt time.Time
	for {
		now := time.Now()
		var wake time.Time
		earliest := func(t time.Time) {
			if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
				wake = t
			}
		}
		w.mu.Lock()
		fetch := w.pendFetch
		if w.pendDebounce {
			due := w.pendLast.Add(w.o.Debounce)
			if capAt := w.pendFirst.Add(w.o.MaxDelay); capAt.Before(due) {
				due = capAt
			}
			if floor := w.lastFetchEnd.Add(w.o.Debounce); due.Before(floor) {
				due = floor
			}
			if due.Before(retryAt) {
				due = retryAt // failing: events do not shorten the backoff
			}
			if !now.Before(due) {
				fetch = true
			} else {
				earliest(due)
			}
		}
		if !retryAt.IsZero() {
			if !now.Before(retryAt) {
				fetch = true
			} else {
				earliest(retryAt)
			}
		}
		recompute := w.pendRecompute
		if !w.graceWake.IsZero() {
			if !now.Before(w.graceWake) {
				recompute = true
				w.graceWake = time.Time{}
			} else {
				earliest(w.graceWake)
			}
		}
		if fetch {
			w.pendFetch, w.pendDebounce = false, false
			retryAt = time.Time{}
		}
		w.pendRecompute = false
		w.mu.Unlock()

		if fetch {
			var lines []string
			apps, broken, err := w.c.fetchApps(ctx, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				w.logNew(lines)
			}
			w.mu.Lock()
			w.lastFetchEnd = time.Now()
			w.mu.Unlock()
			if err != nil {
				w.syncFailed(err)
				retryAt = time.Now().Add(jitter(backoff))
				backoff = min(backoff*2, w.o.BackoffMax)
			} else {
				backoff = w.o.BackoffMin
				w.syncOK(apps, broken)
				recompute = true
			}
		}
		if recompute {
			w.recompute()
		}
		if fetch || recompute {
			continue // re-evaluate: work may have arrived meanwhile
		}
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.notify:
		case <-timer.C:
		case <-ticker.C:
			w.mu.Lock()
			w.pendFetch = true
			w.mu.Unlock()
		}
		timer.Stop()
	}
}

// logNew logs the decode problems not already logged at the last fetch.
func (w *Watcher) logNew(lines []string) {
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		seen[l] = true
		if !w.decodeLines[l] {
			w.logf.printf("%s", l)
		}
	}
	w.decodeLines = seen
}

func (w *Watcher) syncFailed(err error) {
	w.mu.Lock()
	changed := w.syncErr == ""
	w.syncErr = err.Error()
	w.updateStaleLocked()
	w.mu.Unlock()
	if changed {
		w.logf.printf("discovery: cannot sync from Marathon, keeping the last known endpoints and retrying: %v", err)
	}
}

func (w *Watcher) syncOK(apps []App, broken []string) {
	w.mu.Lock()
	// An app that no longer decodes keeps its previous state rather than
	// vanishing (and emptying its backends).
	for _, id := range broken {
		if i := slices.IndexFunc(w.apps, func(a App) bool { return a.ID == id }); i >= 0 {
			apps = append(apps, w.apps[i])
		}
	}
	recovered := w.syncErr != ""
	w.apps = apps
	w.synced = true
	w.lastSync = w.now()
	w.syncErr = ""
	w.syncs++
	w.updateStaleLocked()
	w.mu.Unlock()
	if recovered {
		w.logf.printf("discovery: sync from Marathon recovered")
	}
}

// recompute resolves every watch against the current snapshot and delivers
// the sets that changed.
func (w *Watcher) recompute() {
	w.mu.Lock()
	if !w.synced {
		w.mu.Unlock()
		return
	}
	apps := w.apps
	watches := slices.Clone(w.watches)
	w.mu.Unlock()

	overrides, graceEnd := w.applyHealthMemory(apps, w.now())
	for _, wt := range watches {
		var lines []string
		eps := ResolveLog(apps, wt.sel, func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) })
		for i := range eps {
			if h, ok := overrides[eps[i].TaskID]; ok {
				eps[i].Healthy = h
			}
		}
		logged := make(map[string]bool, len(lines))
		for _, l := range lines {
			logged[l] = true
			if !wt.logged[l] {
				w.logf.printf("%s", l)
			}
		}
		wt.logged = logged
		if wt.delivered && slices.Equal(eps, wt.last) {
			continue
		}
		if eps == nil {
			eps = []Endpoint{}
		}
		w.mu.Lock()
		cancelled := wt.cancelled
		w.mu.Unlock()
		if cancelled {
			continue
		}
		wt.last, wt.delivered = eps, true
		wt.fn(eps)
	}
	w.mu.Lock()
	if !graceEnd.IsZero() {
		w.graceWake = time.Now().Add(graceEnd.Sub(w.now()))
	}
	first := !isClosed(w.syncedCh)
	w.mu.Unlock()
	if first {
		close(w.syncedCh)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// applyHealthMemory remembers each checked task's health and returns the
// overrides for tasks whose results vanished less than HealthGrace ago,
// with the earliest end of those grace periods.
func (w *Watcher) applyHealthMemory(apps []App, now time.Time) (map[string]bool, time.Time) {
	overrides := map[string]bool{}
	seen := map[string]bool{}
	var next time.Time
	for i := range apps {
		if len(apps[i].HealthChecks) == 0 {
			continue
		}
		for j := range apps[i].Tasks {
			t := &apps[i].Tasks[j]
			seen[t.ID] = true
			if len(t.HealthCheckResults) > 0 {
				w.health[t.ID] = &healthMemo{healthy: allAlive(t.HealthCheckResults)}
				continue
			}
			m := w.health[t.ID]
			if m == nil {
				continue // never had a result: unhealthy until the first one
			}
			if m.vanishedAt.IsZero() {
				m.vanishedAt = now
			}
			end := m.vanishedAt.Add(w.o.HealthGrace)
			if now.Before(end) {
				overrides[t.ID] = m.healthy
				if next.IsZero() || end.Before(next) {
					next = end
				}
			}
		}
	}
	for id := range w.health {
		if !seen[id] {
			delete(w.health, id)
		}
	}
	return overrides, next
}
