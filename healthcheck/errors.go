package healthcheck

import "errors"

var (
	// ErrInvalidConfig wraps every error from [Config.Validate] and
	// [Checker.Add] about a bad configuration or address.
	ErrInvalidConfig = errors.New("invalid health check")
	// ErrClosed is returned by [Checker.Add] after [Checker.Close].
	ErrClosed = errors.New("health checker closed")

	errEmptyResponse = errors.New("connection closed before the status line")
	errBadStatusLine = errors.New("malformed status line")
	errLongStatus    = errors.New("status line too long")
	errStatus        = errors.New("unexpected status")
)
