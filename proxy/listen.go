package proxy

import (
	"context"
	"net"
	"time"
)

// clientKeepAlive is the TCP keepalive of client connections: the first
// probe after 15 s idle, then one every 15 s, the connection dropped after
// 9 unanswered (Go's defaults). Probes well inside an NLB's 350 s idle
// timeout keep its flow alive while a client connection waits for its next
// request, and find peers that went away without a FIN.
var clientKeepAlive = net.KeepAliveConfig{
	Enable:   true,
	Idle:     15 * time.Second,
	Interval: 15 * time.Second,
	Count:    9,
}

// Listen opens a frontend's TCP listener on addr. Its accepted connections
// have TCP_NODELAY and clientKeepAlive set. On Linux the keepalive options
// are set once, on the listening socket, whose accepted sockets inherit
// them (with the keepalive timer started), instead of with four
// setsockopt calls per connection.
func Listen(addr string) (net.Listener, error) {
	return listenConfig().Listen(context.Background(), "tcp", addr)
}
