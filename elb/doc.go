// Package elb registers this edgeproxy instance with AWS load balancers and
// takes it out again on shutdown.
//
// It reads the EC2 identity from the instance metadata service with IMDSv2
// only (LoadIdentity), then a Registrar keeps the instance registered with
// Classic Load Balancers (by instance id) and with ALB/NLB target groups (by
// instance id or private IPv4, as the group's target type says, on the
// frontend's port). Registration waits for SetReady. A reconcile loop
// observes the balancer's view every Resync and registers when the target
// is absent, which also repairs deregistrations done out of band; errors
// back off with jitter, and permanent ones (missing balancer, IAM) are
// logged loudly and shown in Status.
//
// On shutdown, Deregister then WaitDrained: the latter returns once the
// balancer reports the target gone or its deregistration delay has passed.
// Kind tells the caller whether failing the health check first is safe: it
// is not behind an NLB, which resets established connections to targets
// that turn unhealthy.
//
// The SDK is configured the standard way (config.LoadDefaultConfig), so
// AWS_ENDPOINT_URL, AWS_EC2_METADATA_SERVICE_ENDPOINT and friends work, and
// package elbtest fakes both the ELB API and IMDS for tests.
package elb
