package elb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

// scaledClock runs scale times faster than real time, so that AWS-sized
// durations (30 s resync, 300 s deregistration delay) pass in milliseconds.
// The fake and the registrar share it.
type scaledClock struct {
	base  time.Time
	start time.Time
	scale float64
}

func newClock(scale float64) *scaledClock {
	now := time.Now()
	return &scaledClock{base: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), start: now, scale: scale}
}

func (c *scaledClock) Now() time.Time {
	return c.base.Add(time.Duration(float64(time.Since(c.start)) * c.scale))
}

func (c *scaledClock) After(d time.Duration) <-chan time.Time {
	return time.After(time.Duration(float64(d) / c.scale))
}

// logSink collects log lines and echoes them to the test log.
type logSink struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.t.Log(line)
}

func (l *logSink) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// env is one fake AWS plus a clock.
type env struct {
	t     *testing.T
	fake  *elbtest.Server
	clock *scaledClock
	logs  *logSink
}

func newEnv(t *testing.T, opts elbtest.Options) *env {
	t.Helper()
	clock := newClock(200)
	opts.Now = clock.Now
	fake := elbtest.New(opts)
	t.Cleanup(fake.Close)
	return &env{t: t, fake: fake, clock: clock, logs: &logSink{t: t}}
}

// cfg points the real SDK at the fake: static credentials, the fake's
// region, BaseEndpoint, and a fast but otherwise standard retryer.
func (e *env) cfg() aws.Config {
	return aws.Config{
		Region:       e.fake.Region(),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(e.fake.URL()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			})
		},
	}
}

// options returns AWS-default timings on the scaled clock, IMDS at the fake.
func (e *env) options(targets ...Target) Options {
	return Options{
		Targets: targets,
		IMDS:    []func(*imds.Options){func(o *imds.Options) { o.Endpoint = e.fake.IMDSURL() }},
		Logf:    e.logs.logf,
		Now:     e.clock.Now,
		After:   e.clock.After,
	}
}

// start builds a registrar and runs it until the test ends.
func (e *env) start(opts Options) *Registrar {
	e.t.Helper()
	r, err := NewRegistrar(e.cfg(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			e.t.Error("Run did not return after cancel")
		}
	})
	return r
}

// waitFor polls cond for up to 10 s of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(r *Registrar, i int) TargetStatus { return r.Status()[i] }

// registered reports whether the fake lists id (and port, unless 0) as
// registered and not draining.
func registered(f *elbtest.Server, lb, id string, port int) bool {
	for _, reg := range f.Registrations(lb) {
		if reg.ID == id && (port == 0 || reg.Port == port) && reg.State != "draining" &&
			reg.Reason != "Instance deregistration currently in progress." {
			return true
		}
	}
	return false
}
