//go:build !linux

package healthcheck

import "time"

// Outside Linux every check goes through net.Dialer: there is no prober,
// and no Target gets a sockProbe.

type prober struct{}

type sockProbe struct{}

func newProber(*Checker) *prober                { return nil }
func newSockProbe(string, bool) *sockProbe      { return nil }
func (*prober) add(*Target, time.Duration) bool { return false }
func (*prober) remove(*Target)                  {}
func (*prober) hurry(*Target, time.Duration)    {}
func (*prober) close()                          {}
