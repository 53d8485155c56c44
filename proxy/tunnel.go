package proxy

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// tunnel forwards an Upgrade request (WebSocket and the like, RFC 9110
// §7.8). The backend connection is dialed for it alone: once the backend
// answers 101 the two connections are spliced until either side ends or the
// tunnel timeout passes without traffic. Any other answer is relayed as a
// normal response and the backend connection is closed.
func (f *Frontend) tunnel(ctx *fasthttp.RequestCtx, be *Backend, info *requestHeadInfo, rl *requestLog) {
	opts := be.opts
	var srv *Server
	var bc *bconn
	var avoid *Server
	for attempt := 0; attempt <= opts.Retries; attempt++ {
		srv = be.pick(0, avoid)
		if srv == nil {
			break
		}
		conn, err := be.dialer.Dial("tcp", srv.Addr)
		if err != nil {
			srv.Stats.ConnErrors.Add(1)
			avoid = srv
			srv = nil
			continue
		}
		srv.Stats.NewConns.Add(1)
		bc = &bconn{conn: conn, br: newTunnelReader(conn), srv: srv}
		rl.dialed(srv, attempt)
		break
	}
	if bc == nil {
		if srv == nil {
			be.Stats.NoServer.Add(1)
			be.Stats.LocalResponses[5].Add(1)
			writeError(ctx, fasthttp.StatusServiceUnavailable)
			return
		}
		be.Stats.LocalResponses[5].Add(1)
		writeError(ctx, fasthttp.StatusBadGateway)
		return
	}
	srv.Stats.Requests.Add(1)
	req := &ctx.Request
	head := appendRequestHead(nil, req.Header.Method(), req.Header.RequestURI(), req.Header.RawHeaders(),
		info, &be.rw, clientAddr(ctx), f.portBytes, f.tls, -2, true)
	bc.armDeadline(time.Now(), opts.Timeouts.Server)
	if _, err := bc.conn.Write(head); err != nil {
		bc.close()
		srv.Stats.RespErrors.Add(1)
		be.Stats.LocalResponses[5].Add(1)
		writeError(ctx, fasthttp.StatusBadGateway)
		return
	}
	resp := &ctx.Response
	if err := readResponseHead(bc.br, &resp.Header); err != nil {
		bc.close()
		srv.Stats.RespErrors.Add(1)
		be.Stats.LocalResponses[5].Add(1)
		writeError(ctx, statusFor(err))
		return
	}
	status := resp.Header.StatusCode()
	rl.responded()
	srv.Stats.Responses[statusClass(status)].Add(1)
	if status != fasthttp.StatusSwitchingProtocols {
		cleanResponseHead(&resp.Header, false)
		if req.Header.IsHead() || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
			resp.SkipBody = true
			bc.close()
			return
		}
		cl := resp.Header.ContentLength()
		mode := bodyFixed
		switch cl {
		case -1:
			mode = bodyChunked
		case -2:
			mode = bodyUntilClose
			cl = -1
		}
		srv.Stats.Active.Add(1)
		bc.body.c = bc
		bc.body.start(mode, int64(cl), false, opts.Timeouts.Server, ctx.Conn(), f.timeouts.Client)
		resp.SetBodyStream(f.logStream(ctx, rl, &bc.body), cl)
		return
	}
	cleanResponseHead(&resp.Header, true)
	resp.SkipBody = true
	bc.setDeadline(time.Time{})
	f.Stats.Tunnels.Add(1)
	idle := opts.Timeouts.Tunnel
	tl := f.holdTunnelLog(ctx, rl)
	endHeldWrites(ctx.Conn())
	ctx.Hijack(func(client net.Conn) {
		up, down := splice(client, bc, idle)
		f.Stats.Tunnels.Add(-1)
		tl.done(up, down)
	})
}

func newTunnelReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, backendReadBuffer) }

// splice copies both ways until both directions end. A direction that ends
// half-closes its destination so the peer sees the end of stream; the
// tunnel closes when both are done or after idle without traffic. It
// returns the bytes copied from the client and to it.
func splice(client net.Conn, bc *bconn, idle time.Duration) (up, down int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		up = pipe(bc.conn, client, client, idle)
	}()
	// The backend reader may already hold bytes sent right after the 101.
	down = pipe(client, bc.br, bc.conn, idle)
	wg.Wait()
	_ = client.Close()
	_ = bc.conn.Close()
	return up, down
}

// pipe copies src to dst, pushing the read deadline of srcConn out by idle
// on every read, and half-closes dst at the end. It returns the bytes
// written.
func pipe(dst net.Conn, src io.Reader, srcConn net.Conn, idle time.Duration) (written int64) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		_ = srcConn.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			_ = dst.SetWriteDeadline(time.Now().Add(idle))
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return written
}
