package elb

import (
	"errors"

	"github.com/aws/smithy-go"
)

// errClass says how the reconcile loop reacts to an error.
type errClass int

const (
	// transient: back off exponentially and retry.
	transient errClass = iota
	// throttled: the API rate limit; back off harder.
	throttled
	// permanent: configuration or permissions; retry slowly (the balancer
	// may be created later, IAM may be fixed) and report loudly.
	permanent
)

// Error codes (section 2.1 of the reference). Codes not listed are
// transient: 5xx answers, connection errors, expired credentials.
var (
	throttleCodes = map[string]bool{
		"Throttling": true, "ThrottlingException": true, "ThrottledException": true,
		"RequestThrottled": true, "RequestThrottledException": true, "TooManyRequestsException": true,
		"RequestLimitExceeded": true, "DependencyThrottle": true, "SlowDown": true,
		"BandwidthLimitExceeded": true, "LimitExceededException": true,
	}
	permanentCodes = map[string]bool{
		"LoadBalancerNotFound": true, "TargetGroupNotFound": true,
		"InvalidInstance": true, "InvalidTarget": true,
		"TooManyTargets": true, "TooManyRegistrationsForTargetId": true,
		"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true,
		"InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "IncompleteSignature": true,
		"MissingAuthenticationToken": true, "AuthFailure": true, "OptInRequired": true,
		"ValidationError": true, "InvalidAction": true, "InvalidParameterValue": true,
		"InvalidConfigurationRequest": true,
	}
	// notFoundCodes mean "there is nothing to deregister or drain".
	notFoundCodes = map[string]bool{
		"LoadBalancerNotFound": true, "TargetGroupNotFound": true, "InvalidInstance": true, "InvalidTarget": true,
	}
)

// permanentError marks an error found by the registrar itself (not by AWS)
// that retrying cannot fix, such as an unsupported target type.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// errorCode returns the AWS error code in err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify returns err's class and AWS error code.
func classify(err error) (errClass, string) {
	var pe permanentError
	if errors.As(err, &pe) {
		return permanent, errorCode(err)
	}
	code := errorCode(err)
	switch {
	case throttleCodes[code]:
		return throttled, code
	case permanentCodes[code]:
		return permanent, code
	}
	return transient, code
}

// isNotFound reports whether err says the balancer or the target does not
// exist, which for deregistration means there is nothing left to do.
func isNotFound(err error) bool { return notFoundCodes[errorCode(err)] }
