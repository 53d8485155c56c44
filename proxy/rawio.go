package proxy

import (
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a non-blocking socket with raw system calls,
// waiting for readiness through Go's network poller, and makes as few of
// them per request as HAProxy does: one read and one write on each side.
//
// Three things make the difference on a busy proxy:
//
//   - net.Conn's Read and Write go through syscall.Syscall, which tells
//     the scheduler the goroutine may block. On a loaded machine the
//     monitor thread then takes the P away from a thread inside a plain
//     socket write and wakes another thread to run it, and the writer has
//     to win a P back when the write returns: a futex wake-up and two
//     context switches, more than the write itself costs. A call on a
//     non-blocking socket never blocks, so rawIO makes it with
//     syscall.RawSyscall, which keeps the P. When the socket is not
//     ready, syscall.RawConn parks the goroutine on the poller exactly as
//     net.Conn would, deadlines included.
//
//   - A write that will be followed by a read of the answer (a request to
//     a backend, a response to a keep-alive client) is sent from inside
//     the read, after the poller's readiness state was reset for it. The
//     read then waits for the poller's event instead of first trying the
//     socket and finding it empty (an EAGAIN read per request and side).
//     On the backend side the caller says so (sendThenRead); on the client
//     side a response that is whole in memory is held until the next Read
//     or Close (deferWrites and holdResponse).
//
//   - fasthttp, releasing its buffers between requests, waits for the next
//     request by reading a single byte and then reads the rest. With
//     stashReads a small read takes what the socket has into a pooled
//     buffer and the next reads are served from it.
//
// No buffer stays with an idle connection: held writes and stashed bytes
// live in pooled buffers only until they are sent or consumed.
//
// Read and Write may be called concurrently, as a net.Conn's may, once
// held writes are off (plain); while they are on, reads and writes must
// come from one goroutine at a time, as in fasthttp's serving loop. Close
// may come from anywhere.
type rawIO struct {
	rc syscall.RawConn

	// Read side, owned by the reader.
	rp      []byte // buffer of the read in progress
	rn      int
	rerr    error
	stash   *[]byte // stashReads: bytes read ahead, stash[soff:]
	soff    int
	sendv   []byte // bytes to send before reading: the caller's (sendThenRead) or in sendBuf
	sendBuf *[]byte

	// held is a write held for the next read (deferWrites), in a pooled
	// buffer. Whoever swaps it out sends it.
	held atomic.Pointer[[]byte]
	// sendErr is the failure of a send made by the read side.
	sendErr error

	// Write side, owned by the writer.
	wp       []byte
	wn       int
	werr     error
	holdNext bool // the next Write may be held: it ends a response

	deferWrites bool
	stashReads  bool

	// A read that follows a send waits for the poller's event instead of
	// first trying the socket. That misses bytes that were already there
	// before the read began, whose event the poller's reset discarded:
	// the rest of a read that filled its buffer (readNow), or a request a
	// pipelining client sent before its previous response went out.
	// lookOnce makes the next read try the socket first (lingerConn does,
	// when its first, short wait for a next request ends); bytes found
	// then mark a client that pipelines, which is always read first.
	readNow   bool
	lookOnce  bool
	pipelines bool

	// Batch mode (batch != nil): held writes are sent by the flusher.
	batch    *flusher
	queued   bool        // reader: this Read queued the held write
	inq      atomic.Bool // in batch's queue, linked through next
	next     *rawIO
	sending  atomic.Bool                   // a sender owns the write side
	finished atomic.Pointer[chan struct{}] // closed when a finisher lets go
	fp       []byte                        // the flusher's send
	fn       int
	ferr     error

	readFn, writeFn, sendFn func(fd uintptr) bool
}

const (
	// maxHeld is the largest write held for the next read: a response
	// head with a small body. Larger ones are streamed bodies.
	maxHeld = 16 << 10
	// stashSize is the read-ahead buffer of a small read: a request head.
	stashSize = 4 << 10
	// smallRead is the largest read served through the stash.
	smallRead = 512
)

var (
	heldBufs  = bufPool{size: maxHeld}
	stashBufs = bufPool{size: stashSize}
)

// newRawIO returns a rawIO for c, or nil when c is not a socket that
// offers raw access.
func newRawIO(c net.Conn) *rawIO {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	x := &rawIO{rc: rc}
	x.readFn, x.writeFn, x.sendFn = x.doRead, x.doWrite, x.doSend
	return x
}

// doRead is the read callback: it sends what is to be sent before the
// read, then reads. It returns false to wait for readability.
func (x *rawIO) doRead(fd uintptr) bool {
	if len(x.sendv) > 0 {
		n, err := rawWrite(fd, x.sendv)
		x.sendv = x.sendv[n:]
		if err != nil && err != syscall.EAGAIN {
			x.sendErr = err
			return true
		}
		if len(x.sendv) > 0 {
			return true // the send buffer is full: Read finishes with Write
		}
		return false // sent: wait for the answer
	}
	if x.batch != nil {
		// The flusher sends the held write; the read waits for the
		// answer to it.
		if !x.queued && x.held.Load() != nil {
			x.queued = true
			x.batch.add(x)
			if !x.readFirst() {
				return false
			}
		}
	} else if hp := x.held.Swap(nil); hp != nil {
		b := *hp
		n, err := rawWrite(fd, b)
		if err != nil && err != syscall.EAGAIN {
			heldBufs.Put(hp)
			x.sendErr = err
			return true
		}
		if n < len(b) {
			// Read finishes it with a blocking write.
			x.sendv, x.sendBuf = b[n:], hp
			return true
		}
		heldBufs.Put(hp)
		if !x.readFirst() {
			return false
		}
	}
	p := x.rp
	var sp *[]byte
	if x.stashReads && len(p) <= smallRead {
		sp = stashBufs.Get()
		p = *sp
	}
	looked := x.lookOnce
	x.lookOnce = false
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		switch e {
		case 0:
			x.rn = int(n)
			x.readNow = x.rn == len(p)
			if looked && x.rn > 0 {
				x.pipelines = true
			}
			if sp != nil {
				if x.rn > 0 {
					x.stash, x.soff = sp, 0
					*sp = (*sp)[:x.rn]
				} else {
					stashBufs.Put(sp)
				}
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			x.readNow = false
		default:
			x.rerr = e
		}
		if sp != nil {
			stashBufs.Put(sp)
		}
		return e != syscall.EAGAIN
	}
}

// readFirst reports whether a read after a send must try the socket
// before it waits (see readNow).
func (x *rawIO) readFirst() bool { return x.readNow || x.lookOnce || x.pipelines }

func (x *rawIO) doWrite(fd uintptr) bool {
	for x.wn < len(x.wp) {
		n, err := rawWrite(fd, x.wp[x.wn:])
		x.wn += n
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			x.werr = err
			return true
		}
	}
	return true
}

// rawWrite writes what the socket takes of p without blocking.
//
// Sockets are read with recvfrom and written with sendto, as HAProxy
// does, rather than read and write, which reach the socket through the
// file layer (the file position lock and the read/write hooks): less
// kernel time per call. MSG_NOSIGNAL makes a write to a closed
// connection fail with EPIPE without raising SIGPIPE for the runtime to
// swallow.
func rawWrite(fd uintptr, p []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), msgNoSignal, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}

// Read reads into p as net.Conn's Read does, sending first what is to be
// sent before it.
func (x *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if x.stash != nil {
		return x.fromStash(p), nil
	}
	x.rp, x.rn, x.rerr, x.sendErr, x.queued = p, 0, nil, nil, false
	err := x.rc.Read(x.readFn)
	x.rp = nil
	if len(x.sendv) > 0 && x.sendErr == nil && err == nil {
		// The send buffer filled up: send the rest, then read.
		_, err = x.write(x.sendv)
		x.sendv = nil
		if hp := x.sendBuf; hp != nil {
			x.sendBuf = nil
			heldBufs.Put(hp)
		}
		if err != nil {
			x.sendErr = err
			return 0, err
		}
		return x.Read(p)
	}
	x.sendv = nil
	switch {
	case x.sendErr != nil:
		return 0, opError("write", x.sendErr)
	case err != nil:
		return 0, err
	case x.rerr != nil:
		return 0, opError("read", x.rerr)
	case x.rn == 0:
		return 0, io.EOF
	}
	if x.stash != nil {
		return x.fromStash(p), nil
	}
	return x.rn, nil
}

func (x *rawIO) fromStash(p []byte) int {
	s := *x.stash
	n := copy(p, s[x.soff:])
	x.soff += n
	if x.soff == len(s) {
		stashBufs.Put(x.stash)
		x.stash = nil
	}
	return n
}

// Write writes all of p as net.Conn's Write does; with deferWrites on, the
// first small write after a read is held for the next read or Close.
func (x *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if x.deferWrites {
		if x.holdNext && len(p) <= maxHeld && x.held.Load() == nil {
			x.holdNext = false
			hp := heldBufs.Get()
			*hp = append((*hp)[:0], p...)
			x.held.Store(hp)
			return len(p), nil
		}
		x.holdNext = false
		if err := x.flush(); err != nil {
			return 0, err
		}
	}
	return x.write(p)
}

func (x *rawIO) write(p []byte) (int, error) {
	x.wp, x.wn, x.werr = p, 0, nil
	err := x.rc.Write(x.writeFn)
	n := x.wn
	x.wp = nil
	if err == nil && x.werr != nil {
		err = opError("write", x.werr)
	}
	return n, err
}

// flush sends a held write now, after any send the flusher started.
func (x *rawIO) flush() error {
	if x.batch != nil {
		x.acquireSend()
		defer x.sending.Store(false)
	}
	hp := x.held.Swap(nil)
	if hp == nil {
		return nil
	}
	_, err := x.write(*hp)
	heldBufs.Put(hp)
	return err
}

// holdResponse lets the next Write, which starts the response just made,
// be held for the next read when it is the whole response. Only a
// response that is whole in memory may be held: a streamed one is written
// as it arrives.
func (x *rawIO) holdResponse() {
	if x.deferWrites {
		x.holdNext = true
	}
}

// plain sends any held write and stops holding writes, so that Read and
// Write may be used concurrently.
func (x *rawIO) plain() error {
	x.deferWrites = false
	return x.flush()
}

// sendThenRead makes the next Read send p first. p must stay untouched
// until that Read returns.
func (x *rawIO) sendThenRead(p []byte) {
	x.sendv, x.sendErr = p, nil
}

// sendFailed reports whether the last sendThenRead failed before all of
// its bytes were sent.
func (x *rawIO) sendFailed() bool { return x.sendErr != nil }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}
