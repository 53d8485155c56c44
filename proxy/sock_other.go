//go:build !linux

package proxy

import "syscall"

// unreadInput cannot tell here: connections always linger on close.
func unreadInput(syscall.RawConn) (int, bool) { return 0, false }

// msgNoSignal: SIGPIPE is not raised per call here; the runtime handles it.
const msgNoSignal = 0
