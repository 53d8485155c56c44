// Package proxy is edgeproxy's data plane: HTTP frontends (listeners),
// routing by an Edge-LB linkBackend, balancing over the servers of a backend,
// and forwarding over pooled keep-alive backend connections.
//
// The per-request path is built to cost no more than HAProxy's: it reads one
// atomic pointer to find the current server set of a backend, picks a server
// without locks, takes an idle backend connection from a lock-free pool,
// writes the request head in one buffer it owns and reads the response head
// straight into the server's response object. Nothing on that path
// allocates; a test guards it.
//
// Each side's keep-alive is independent, as in HAProxy's default
// http-keep-alive mode: a client's "Connection: close" ends the client
// connection after its response but leaves the backend connection pooled; a
// backend's "Connection: close" retires that backend connection and keeps the
// client's. When edgeproxy itself ends a client connection it says so with
// "Connection: close" on a response, or closes an idle connection with a
// half-close and a lingering read, so a response is never destroyed by a
// reset.
package proxy
