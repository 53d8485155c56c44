//go:build linux

package proxy

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		// Accepted sockets inherit the listener's keepalive (see Listen):
		// Go is not to set it again on each.
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			cerr := rc.Control(func(fd uintptr) { err = setKeepAlive(int(fd), clientKeepAlive) })
			if cerr != nil {
				return cerr
			}
			return err
		},
	}
}

// setKeepAlive sets TCP keepalive on the socket fd as ka says.
func setKeepAlive(fd int, ka net.KeepAliveConfig) error {
	opts := []struct {
		level, name, value int
		what               string
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(ka.Idle.Seconds()), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(ka.Interval.Seconds()), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, ka.Count, "TCP_KEEPCNT"},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return os.NewSyscallError("setsockopt "+o.what, err)
		}
	}
	return nil
}
