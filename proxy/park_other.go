//go:build !linux

package proxy

// parker is Linux-only: elsewhere idle connections keep their goroutine.
type parker struct{}

func newParker(*Frontend) *parker       { return &parker{} }
func (p *parker) park(*lingerConn) bool { return false }
func (p *parker) closeAll()             {}

const parkingSupported = false
