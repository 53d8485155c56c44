// Package healthcheck decides which backend endpoints may take traffic.
//
// A [Checker] owns a set of [Target]s, one per endpoint (host:port). For
// each Target it runs active checks with HAProxy's inter/rise/fall
// semantics, accepts passive failure reports from live traffic, and folds
// in Marathon's own task health and the draining flag. The proxy asks a
// Target [Target.Up] and [Target.WeightFactor] on every request; both are
// a single atomic load (plus a little arithmetic during slow start), take
// no lock and allocate nothing.
//
// # The combination rule
//
// An endpoint takes traffic (Up returns true) only when all three hold:
//
//   - the check part is not Down: it is Up, or Checking (no result yet,
//     assumed up, as HAProxy starts its servers), or checks are disabled;
//   - Marathon reports the task healthy ([Target.SetMarathonHealthy]; a
//     new Target starts healthy, which is right for apps without Marathon
//     health checks);
//   - the endpoint is not draining ([Target.SetDraining]).
//
// The effective [State] reported to OnChange and in [TargetStatus] is Down
// when the check part is Down or Marathon says unhealthy, else Draining
// when draining, else the check part (Checking or Up).
//
// # Active checks
//
// A TCP check connects within the timeout and closes at once with a
// reset, sending no data. An HTTP check sends one HTTP/1.1 request with Connection: close
// and reads only the status line; 2xx and 3xx pass unless a specific
// status is expected. A server that is Up goes Down after Fall
// consecutive failed checks; a server that is Down goes Up after Rise
// consecutive successful checks. The first result decides a Checking
// server at once: a success makes it Up, a failure makes it Down (HAProxy
// starts servers "up, going down at the first failure"), so a server that
// was never reachable leaves the rotation after its first check.
//
// Checks of one Target never overlap: the next one is scheduled when the
// previous one ends, after Inter when Up and steady, FastInter while a
// transition is in progress (Up with failures, Down with successes), and
// DownInter when Down and steady, each spread by a few percent at random
// (HAProxy's spread-checks). The first check of a new Target waits a
// random delay within Inter, so targets added together are not checked in
// a burst.
//
// # Passive ejection
//
// [Target.ReportFailure] counts consecutive connection failures seen on
// live traffic; ErrorLimit of them in a row mark the Target Down at once
// (HAProxy "observe layer4, error-limit, on-error mark-down") and bring
// the next active check forward to FastInter. Only active checks bring it
// back, after Rise successes. [Target.ReportSuccess] resets the count.
//
// # Slow start
//
// When a Target that was not taking traffic starts taking it again (check
// Down to Up, Marathon unhealthy to healthy, draining ended), its weight
// factor ramps linearly from almost 0 to [WeightScale] over
// Config.SlowStart. A Target that is up when it is added does not ramp.
//
// # Cost
//
// There is no goroutine per Target. On Linux a TCP check of an IP address,
// the default check, runs on one loop goroutine per Checker (prober in
// prober_linux.go). The loop keeps the next check of every Target in one
// timer heap, with deadlines snapped to a grid of Inter/40 (at most 50ms)
// so that checks falling due together start in one wakeup. It connects
// with non-blocking raw system calls (on loopback the connect has usually
// completed when it returns), waits for the slower ones in an epoll set of
// its own, and sleeps in the Go netpoller on that set, with a timerfd for
// the next deadline: between checks the process sleeps, and wakes on grid
// lines and when a pending connect ends. Hooks run on a second goroutine,
// so a slow hook holds up no check. At 1,000 Targets and inter 2s on loopback this costs under 2% of
// a core, where net.Dialer costs about 5% (BenchmarkCheck1000).
//
// HTTP checks, checks of host names (resolved on every check) and all
// checks outside Linux go through net.Dialer. Each of those Targets has
// one runtime timer (time.AfterFunc) on the same grid, which hands the
// check to a pool of worker goroutines that grows on demand and shrinks
// when idle. A semaphore (Options.MaxConcurrent) bounds the checks in
// flight of both kinds. A Checker with no check due holds no goroutine
// but idle ones, which exit after 10s.
package healthcheck
