package stats

import "time"

// ServerHealth is a server's health checking as the report shows it, in
// HAProxy's terms. Options.ServerHealth supplies it.
type ServerHealth struct {
	// State is the server's status: "UP", "DOWN", "DRAIN" (healthy but
	// taking no new requests), "MAINT" or "NOLB". Empty derives it from
	// Available() and the weight. A server that would be UP shows "no
	// check" when Checked is false, as in HAProxy.
	State string
	// Checked is false when the server has no active checks; the check
	// columns, chkfail, chkdown and downtime then stay empty.
	Checked bool
	// CheckStatus is the last check's result as HAProxy names it: "INI"
	// before the first, "L4OK", "L4TOUT", "L4CON", "L7OK", "L7TOUT",
	// "L7RSP", "L7STS".
	CheckStatus string
	// CheckCode is the HTTP status of the last check, 0 for none.
	CheckCode int
	// CheckDuration is how long the last check took.
	CheckDuration time.Duration
	// CheckDesc is HAProxy's fixed description of CheckStatus
	// (check_desc): "Layer4 check passed", "Layer7 wrong status", ...
	CheckDesc string
	// CheckDetail is what the last check said beyond its status
	// (last_chk): the system error of a failed connect ("Connection
	// refused"), the reason phrase of an unexpected status. Often empty.
	CheckDetail string
	// Rise and Fall are the check thresholds; Health is HAProxy's
	// check_health, from 0 (down for good) to Rise+Fall-1 (up for good).
	Rise, Fall, Health int
	// CheckFailures counts failed checks (chkfail), Downs transitions to
	// DOWN (chkdown).
	CheckFailures, Downs uint64
	// LastChange is when the state last changed; zero if unknown.
	LastChange time.Time
	// Downtime is the total time spent DOWN.
	Downtime time.Duration
}

// checkStatuses are the check results HAProxy's exporter labels
// haproxy_server_check_status with, in its order: every status a finished
// check can have, including those edgeproxy never reports.
var checkStatuses = []string{
	"HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
	"L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
}

// fillHealth sets a server row's health columns (the status is
// serverState's). As in HAProxy, a server without active checks shows only
// lastchg.
func fillHealth(r *row, h ServerHealth, now time.Time) {
	if !h.LastChange.IsZero() {
		r.set(colLastchg, int64(max(now.Sub(h.LastChange), 0)/time.Second))
	}
	if !h.Checked {
		return
	}
	r.set(colDowntime, int64(h.Downtime/time.Second))
	r.setU(colChkdown, h.Downs)
	r.setU(colChkfail, h.CheckFailures)
	r.checked = true
	r.checkStatus, r.checkDesc, r.lastChk = h.CheckStatus, h.CheckDesc, h.CheckDetail
	if h.CheckCode > 0 {
		r.set(colCheckCode, int64(h.CheckCode))
	}
	if h.CheckStatus != "" && h.CheckStatus != "INI" {
		r.set(colCheckDuration, h.CheckDuration.Milliseconds())
	}
	r.set(colCheckRise, int64(h.Rise))
	r.set(colCheckFall, int64(h.Fall))
	r.set(colCheckHealth, int64(h.Health))
}
