package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/edgeproxy/edgeproxy/config"
)

func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := newRunFlagSet(&f, stderr)
	if err := parseWithEnv(fs, args, defaultGetenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "edgeproxy run: %v\n", err)
		return 2
	}
	if f.config == "" {
		fmt.Fprintln(stderr, "edgeproxy run: --config FILE is required")
		return 2
	}
	log := newLogger(f.logFormat, stderr)
	pool, err := loadPool(f.config, stderr)
	if err != nil {
		return 1
	}
	if f.bindAddress != "" {
		config.ApplyBindAddress(pool, f.bindAddress)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if f.debugAddress != "" {
		if err := serveDebug(f.debugAddress, log); err != nil {
			fmt.Fprintf(stderr, "edgeproxy run: --debug-address: %v\n", err)
			return 1
		}
	}
	return runPool(ctx, pool, &f, log, stderr, nil)
}

// runPool runs one instance of pool until ctx ends. serving, when not nil,
// is called once every frontend serves.
func runPool(ctx context.Context, pool *config.Pool, f *runFlags, log *slog.Logger, stderr io.Writer, serving func()) int {
	in, err := newInstance(pool, f, log.With("pool", pool.Name))
	if err != nil {
		fmt.Fprintf(stderr, "edgeproxy: pool %q: %v\n", pool.Name, err)
		return 1
	}
	in.serving = serving
	if err := in.run(ctx); err != nil {
		fmt.Fprintf(stderr, "edgeproxy: pool %q: %v\n", pool.Name, err)
		return 1
	}
	return 0
}

// loadPool parses the pool file, printing every error and warning.
func loadPool(path string, stderr io.Writer) (*config.Pool, error) {
	pool, err := config.ParseFile(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(stderr, "%s: %d error(s):\n", path, len(errs))
			for _, e := range errs {
				fmt.Fprintf(stderr, "  %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
		}
		return nil, err
	}
	for _, w := range pool.Unsupported() {
		fmt.Fprintf(stderr, "%s: warning: %v\n", path, w)
	}
	return pool, nil
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgeproxy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "edgeproxy validate: exactly one FILE is required")
		return 2
	}
	pool, err := loadPool(fs.Arg(0), stderr)
	if err != nil {
		return 1
	}
	out, err := pool.MarshalEffective()
	if err != nil {
		fmt.Fprintf(stderr, "edgeproxy validate: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}
