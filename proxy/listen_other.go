//go:build !linux

package proxy

import "net"

// Elsewhere Go sets the keepalive on each accepted connection.
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{KeepAliveConfig: clientKeepAlive}
}
