package stats

import (
	"log"
	"strings"
)

// newErrorLog adapts a Logf function to the *log.Logger that net/http and
// promhttp report their errors to.
func newErrorLog(logf func(string, ...any)) *log.Logger {
	return log.New(logfWriter(logf), "", 0)
}

type logfWriter func(string, ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("stats: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
