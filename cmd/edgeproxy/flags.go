package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// runFlags are edgeproxy's own settings, kept apart from the Edge-LB pool.
type runFlags struct {
	config             string
	bindAddress        string
	marathon           string
	marathonUser       string
	marathonPassword   string
	dcosUID            string
	dcosKey            string
	dcosLoginURL       string
	marathonCA         string
	gracePeriod        time.Duration
	startupTimeout     time.Duration
	timeouts           proxy.Timeouts
	maxRequestsPerConn int
	logFormat          string
	awsCLBs            listFlag
	awsTargetGroups    listFlag
	awsPort            int
	lazyClose          time.Duration
	debugAddress       string
	maxHeaderSize      int
	parkIdleAfter      time.Duration
	trimMemoryAfter    time.Duration
	batchWrites        string
	accessLog          string
	accessLogFormat    string
	trustForwardedFor  listFlag
}

func newRunFlagSet(f *runFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("edgeproxy run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	d := proxy.DefaultTimeouts
	fs.StringVar(&f.config, "config", "", "")
	fs.StringVar(&f.bindAddress, "bind-address", "", "")
	fs.StringVar(&f.marathon, "marathon", "", "")
	fs.StringVar(&f.marathonUser, "marathon-user", "", "")
	fs.StringVar(&f.marathonPassword, "marathon-password", "", "")
	fs.StringVar(&f.dcosUID, "dcos-uid", "", "")
	fs.StringVar(&f.dcosKey, "dcos-private-key", "", "")
	fs.StringVar(&f.dcosLoginURL, "dcos-login-url", "", "")
	fs.StringVar(&f.marathonCA, "marathon-ca", "", "")
	fs.DurationVar(&f.gracePeriod, "grace-period", 30*time.Second, "")
	fs.DurationVar(&f.startupTimeout, "startup-timeout", 30*time.Second, "")
	fs.DurationVar(&f.timeouts.Connect, "timeout-connect", d.Connect, "")
	fs.DurationVar(&f.timeouts.Client, "timeout-client", d.Client, "")
	fs.DurationVar(&f.timeouts.Server, "timeout-server", d.Server, "")
	fs.DurationVar(&f.timeouts.HTTPRequest, "timeout-http-request", d.HTTPRequest, "")
	fs.DurationVar(&f.timeouts.Tunnel, "timeout-tunnel", d.Tunnel, "")
	fs.DurationVar(&f.timeouts.Queue, "timeout-queue", d.Queue, "")
	fs.DurationVar(&f.timeouts.KeepAlive, "timeout-keep-alive", d.KeepAlive, "")
	fs.DurationVar(&f.timeouts.BackendIdle, "timeout-backend-idle", d.BackendIdle, "")
	fs.IntVar(&f.maxRequestsPerConn, "max-requests-per-conn", 0, "")
	fs.StringVar(&f.logFormat, "log-format", "json", "")
	fs.Var(&f.awsCLBs, "aws-clb", "")
	fs.Var(&f.awsTargetGroups, "aws-target-group", "")
	fs.IntVar(&f.awsPort, "aws-port", 0, "")
	fs.DurationVar(&f.lazyClose, "lazy-close", 5*time.Second, "")
	fs.StringVar(&f.debugAddress, "debug-address", "", "")
	fs.IntVar(&f.maxHeaderSize, "max-header-size", proxy.DefaultMaxHeaderSize, "")
	fs.DurationVar(&f.parkIdleAfter, "park-idle-after", proxy.DefaultParkIdleAfter, "")
	fs.DurationVar(&f.trimMemoryAfter, "trim-memory-after", 30*time.Second, "")
	fs.StringVar(&f.batchWrites, "batch-writes", "auto", "")
	fs.StringVar(&f.accessLog, "access-log", "stdout", "")
	fs.StringVar(&f.accessLogFormat, "access-log-format", "json", "")
	fs.Var(&f.trustForwardedFor, "trust-forwarded-for", "")
	return fs
}

// parseWithEnv parses args, first taking every flag not given on the command
// line from EDGEPROXY_<NAME> in the environment.
func parseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := "EDGEPROXY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment %s=%q: %w", env, v, e)
			}
		}
	})
	return err
}

func defaultGetenv(k string) string { return os.Getenv(k) }
