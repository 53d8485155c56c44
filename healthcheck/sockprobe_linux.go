//go:build linux

package healthcheck

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockProbe is what the prober needs to check one Target: the address in
// the form connect(2) takes, and the state of the Target in its loop.
type sockProbe struct {
	domain int            // AF_INET or AF_INET6
	sa     unsafe.Pointer // to sa4 or sa6: the check address
	saLen  uintptr
	sa4    unix.RawSockaddrInet4
	sa6    unix.RawSockaddrInet6
	raddr  *net.TCPAddr // the check address in errors, as net.Dialer puts it
	wait   bool         // tests: never finish a connect before epoll says so

	// Owned by the prober's loop.
	index   int    // position in the loop's timer heap; -1 when not in it
	fd      int    // socket of the check in flight; -1 when none
	slot    int32  // of the check in flight, in the loop's table
	gen     uint32 // tells the epoll event of this check from a stale one
	start   int64  // on the loop's clock: when the check in flight started
	waiting bool   // due, waiting for a MaxConcurrent slot
}

// newSockProbe returns the prober's view of a check address, or nil when
// the address is not an IP literal: a host name is resolved by net.Dialer
// on every check, and an IPv6 zone needs its interface looked up, so those
// checks keep the net.Dialer path. With wait, every connect goes through
// epoll, as it does off loopback.
func newSockProbe(checkAddr string, wait bool) *sockProbe {
	ap, err := netip.ParseAddrPort(checkAddr)
	if err != nil || ap.Addr().Zone() != "" {
		return nil
	}
	s := &sockProbe{index: -1, fd: -1, raddr: net.TCPAddrFromAddrPort(ap), wait: wait}
	// net.Dialer dials an IPv4-mapped IPv6 address over IPv4, and so do we.
	if a := ap.Addr().Unmap(); a.Is4() {
		s.domain = unix.AF_INET
		s.sa4.Family = unix.AF_INET
		s.sa4.Addr = a.As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.sa4.Port))[:], ap.Port())
		s.sa, s.saLen = unsafe.Pointer(&s.sa4), unix.SizeofSockaddrInet4
	} else {
		s.domain = unix.AF_INET6
		s.sa6.Family = unix.AF_INET6
		s.sa6.Addr = a.As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.sa6.Port))[:], ap.Port())
		s.sa, s.saLen = unsafe.Pointer(&s.sa6), unix.SizeofSockaddrInet6
	}
	return s
}

// The system calls of a check are made with RawSyscall: none of them
// blocks (the socket is non-blocking, and close with SO_LINGER 0 aborts),
// and telling the Go scheduler about each one would cost more than the
// call, and wake the runtime's sysmon thread from its sleep for every
// batch of checks.

// resetLinger makes close(2) abort a connection with a reset instead of
// a FIN, so checks leave no TIME_WAIT sockets behind (see probe).
var resetLinger = unix.Linger{Onoff: 1, Linger: 0}

// dial starts a non-blocking connect. It returns the socket of a connect
// still in progress, or -1 when the check is over: the connection was
// made (and reset at once), or failed with err.
func (s *sockProbe) dial() (fd int, err error) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(s.domain),
		unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if e != 0 {
		return -1, s.error("socket", e)
	}
	fd = int(r)
	e = s.connect(fd)
	if e == unix.EINPROGRESS && !s.wait {
		// On loopback the kernel has usually finished the handshake by
		// the time connect returns, and asking again costs one system
		// call where waiting costs an epoll registration and a wakeup.
		// Asking again returns 0 once connected, EALREADY while still in
		// progress, or the error that ended the attempt.
		e = s.connect(fd)
	}
	switch e {
	case 0, unix.EISCONN:
		return -1, s.reset(fd)
	case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
		return fd, nil
	}
	closeFd(fd)
	return -1, s.error("connect", e)
}

func (s *sockProbe) connect(fd int) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(s.sa), s.saLen)
	return e
}

// connected ends a connect that epoll reported done: the check passed if
// SO_ERROR is 0. It closes fd.
func (s *sockProbe) connected(fd int) error {
	var soErr int32
	n := uint32(unsafe.Sizeof(soErr))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR,
		uintptr(unsafe.Pointer(&soErr)), uintptr(unsafe.Pointer(&n)), 0)
	switch {
	case e != 0:
		closeFd(fd)
		return s.error("getsockopt", e)
	case soErr != 0:
		closeFd(fd)
		return s.error("connect", unix.Errno(soErr))
	}
	return s.reset(fd)
}

// reset closes a connected socket with a reset, as probe does with
// net.TCPConn.SetLinger(0).
func (s *sockProbe) reset(fd int) error {
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER,
		uintptr(unsafe.Pointer(&resetLinger)), unix.SizeofLinger, 0)
	closeFd(fd)
	return nil
}

func closeFd(fd int) { unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0) }

// error returns what net.Dialer returns when the system call fails with
// err: "dial tcp 192.0.2.1:80: connect: connection refused".
func (s *sockProbe) error(call string, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: s.raddr, Err: os.NewSyscallError(call, err)}
}

// timeout returns what net.Dialer returns past its deadline when the
// socket's deadline fires before the context's (it returns either):
// "dial tcp 192.0.2.1:80: i/o timeout".
func (s *sockProbe) timeout() error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: s.raddr, Err: os.ErrDeadlineExceeded}
}
