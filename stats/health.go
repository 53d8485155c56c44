package stats

import "time"

// ServerHealth is a server's health checking as the report shows it, in
// HAProxy's terms. Options.ServerHealth supplies it.
type ServerHealth struct {
	// State is the server's status: "UP", "DOWN", "DRAIN" (healthy but
	// taking no new requests), "MAINT" or "NOLB". Empty derives it from
	// Available() and the weight.
	State string
	// Checked is false when the server has no active checks; the check
	// columns then stay empty.
	Checked bool
	// CheckStatus is the last check's result as HAProxy names it: "INI"
	// before the first, "L4OK", "L4TOUT", "L4CON", "L7OK", "L7TOUT",
	// "L7RSP", "L7STS".
	CheckStatus string
	// CheckCode is the HTTP status of the last check, 0 for none.
	CheckCode int
	// CheckDuration is how long the last check took.
	CheckDuration time.Duration
	// CheckDesc says in words why the last check passed or failed.
	CheckDesc string
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

// fillHealth sets a server row's health columns (the status is
// serverState's).
func fillHealth(r *row, h ServerHealth, now time.Time) {
	if !h.LastChange.IsZero() {
		r.set(colLastchg, int64(max(now.Sub(h.LastChange), 0)/time.Second))
	}
	r.set(colDowntime, int64(h.Downtime/time.Second))
	r.setU(colChkdown, h.Downs)
	if !h.Checked {
		return
	}
	r.setU(colChkfail, h.CheckFailures)
	r.checkStatus, r.checkDesc = h.CheckStatus, h.CheckDesc
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
