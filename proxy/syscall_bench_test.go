package proxy

import (
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkSocketCalls measures one response's worth of socket calls (a
// write of 852 bytes and the read of them on loopback) made with read and
// write, as net.Conn makes them, and with recvfrom and sendto, as rawIO
// makes them (go test -run '^$' -bench SocketCalls -count 6 ./proxy).
func BenchmarkSocketCalls(b *testing.B) {
	for _, bc := range []struct {
		name        string
		write, read uintptr
		flags       uintptr
	}{
		{"read-write", syscall.SYS_WRITE, syscall.SYS_READ, 0},
		{"recvfrom-sendto", syscall.SYS_SENDTO, syscall.SYS_RECVFROM, msgNoSignal},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a, c := tcpPair(b)
			var wfd, rfd uintptr
			ra, _ := a.SyscallConn()
			rc, _ := c.SyscallConn()
			_ = ra.Control(func(fd uintptr) { wfd = fd })
			_ = rc.Control(func(fd uintptr) { rfd = fd })
			out := make([]byte, 852)
			in := make([]byte, 4096)
			for b.Loop() {
				// read and write take three arguments; the other three
				// are ignored.
				if _, _, e := syscall.RawSyscall6(bc.write, wfd, uintptr(unsafe.Pointer(&out[0])), uintptr(len(out)), bc.flags, 0, 0); e != 0 {
					b.Fatal(e)
				}
				if _, _, e := syscall.RawSyscall6(bc.read, rfd, uintptr(unsafe.Pointer(&in[0])), uintptr(len(in)), 0, 0, 0); e != 0 {
					b.Fatal(e)
				}
			}
		})
	}
}
