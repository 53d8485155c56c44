package healthcheck

import "time"

// State is the state of a Target, either of its check part or the
// effective one (see the package documentation for the rule).
type State uint32

const (
	// StateChecking: no check result yet; assumed up, takes traffic.
	StateChecking State = iota
	// StateUp: takes traffic.
	StateUp
	// StateDown: failed its checks, ejected by passive failures, or
	// unhealthy in Marathon.
	StateDown
	// StateDraining: healthy but draining; takes no new traffic.
	StateDraining
)

// String returns the upper-case name used in logs and stats pages.
func (s State) String() string {
	switch s {
	case StateChecking:
		return "CHECKING"
	case StateUp:
		return "UP"
	case StateDown:
		return "DOWN"
	case StateDraining:
		return "DRAIN"
	}
	return "UNKNOWN"
}

// Result is the outcome of one check. String returns HAProxy's check
// status codes, as shown in the check_status column of its stats CSV.
type Result uint8

const (
	ResultNone       Result = iota // no check has finished yet ("INI")
	ResultL4OK                     // TCP connect succeeded
	ResultL4Timeout                // TCP connect timed out
	ResultL4Conn                   // TCP connect failed (refused, unreachable, reset)
	ResultL7OK                     // HTTP status as expected
	ResultL7Timeout                // no status line within the timeout
	ResultL7Response               // closed or malformed before a valid status line
	ResultL7Status                 // valid status line with an unexpected status
)

// String returns the HAProxy check status code of r.
func (r Result) String() string {
	switch r {
	case ResultNone:
		return "INI"
	case ResultL4OK:
		return "L4OK"
	case ResultL4Timeout:
		return "L4TOUT"
	case ResultL4Conn:
		return "L4CON"
	case ResultL7OK:
		return "L7OK"
	case ResultL7Timeout:
		return "L7TOUT"
	case ResultL7Response:
		return "L7RSP"
	case ResultL7Status:
		return "L7STS"
	}
	return "UNK"
}

// OK reports whether r is a passed check.
func (r Result) OK() bool { return r == ResultL4OK || r == ResultL7OK }

// TargetStatus is a consistent copy of a Target's state for stats pages
// and metrics.
type TargetStatus struct {
	Addr      string // endpoint address given to Add
	CheckAddr string // address checks connect to

	State           State // effective state
	Check           State // check part: Checking, Up or Down (Up when checks are disabled)
	CheckEnabled    bool
	MarathonHealthy bool
	Draining        bool

	Rise, Fall int
	// Successes counts consecutive passed checks while the check part is
	// Down (progress towards Rise, HAProxy's "DOWN 1/2").
	Successes int
	// Failures counts consecutive failed checks while the check part is
	// Up (progress towards Fall, HAProxy's "UP 1/3").
	Failures int

	LastResult   Result
	LastCode     int   // HTTP status of the last check, 0 if none
	LastErr      error // why the last check failed, nil if it passed
	LastDuration time.Duration
	LastCheck    time.Time // when the last check ended; zero before the first
	LastChange   time.Time // when State last changed (Add counts)

	Checks          uint64        // checks run
	CheckFailures   uint64        // failed checks (HAProxy chkfail)
	Downs           uint64        // transitions into Down (HAProxy chkdown)
	Downtime        time.Duration // total time Down, the current stretch included
	PassiveFailures uint64        // ReportFailure calls counted
	Ejections       uint64        // times passive failures marked the target Down

	Weight uint32 // slow-start weight factor now; WeightScale is full weight
}
