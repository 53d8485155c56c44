//go:build linux

package proxy

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadInput reports how many received bytes wait unread in the socket;
// ok is false when that cannot be told.
func unreadInput(rc syscall.RawConn) (n int, ok bool) {
	err := rc.Control(func(fd uintptr) {
		var e error
		n, e = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		ok = e == nil
	})
	return n, ok && err == nil
}

// msgNoSignal is sendto's flag that makes a write to a closed connection
// fail with EPIPE without raising SIGPIPE.
const msgNoSignal = syscall.MSG_NOSIGNAL
