package stats

import (
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Which backends' byte counters a frontend row carries.
func TestFrontendAttribution(t *testing.T) {
	a := newBackend("a", spec("a0", "127.0.0.1:1"))
	b := newBackend("b", spec("b0", "127.0.0.1:2"))
	a.Servers()[0].Stats.BytesIn.Add(3)
	b.Servers()[0].Stats.BytesIn.Add(5)
	newFE := func(name string) *proxy.Frontend {
		f, err := proxy.NewFrontend(proxy.FrontendConfig{Name: name, Default: a})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f1, f2 := newFE("f1"), newFE("f2")
	f1.Stats.Requests.Add(7)

	tests := []struct {
		name      string
		frontends []*proxy.Frontend
		backends  []*proxy.Backend
		links     func(*proxy.Frontend) []*proxy.Backend
		want      map[string]string // frontend -> bin
	}{
		{"one frontend owns every backend", []*proxy.Frontend{f1}, []*proxy.Backend{a, b}, nil,
			map[string]string{"f1": "8"}},
		{"several frontends, no links: unknown", []*proxy.Frontend{f1, f2}, []*proxy.Backend{a, b}, nil,
			map[string]string{"f1": "", "f2": ""}},
		{"links, duplicates counted once", []*proxy.Frontend{f1, f2}, []*proxy.Backend{a, b},
			func(f *proxy.Frontend) []*proxy.Backend {
				if f == f1 {
					return []*proxy.Backend{a, a, nil}
				}
				return []*proxy.Backend{b}
			},
			map[string]string{"f1": "3", "f2": "5"}},
		{"a shared backend counts in each frontend", []*proxy.Frontend{f1, f2}, []*proxy.Backend{a, b},
			func(*proxy.Frontend) []*proxy.Backend { return []*proxy.Backend{a, b} },
			map[string]string{"f1": "8", "f2": "8"}},
		{"a linked backend missing from Backends is still read", []*proxy.Frontend{f1}, []*proxy.Backend{a},
			func(*proxy.Frontend) []*proxy.Backend { return []*proxy.Backend{b} },
			map[string]string{"f1": "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{
				Frontends:        func() []*proxy.Frontend { return tt.frontends },
				Backends:         func() []*proxy.Backend { return tt.backends },
				FrontendBackends: tt.links,
			})
			got := map[string]string{}
			for _, g := range s.build(time.Time{}) {
				if g.Frontend != nil && !g.IsListen {
					got[g.Name] = g.Frontend.cell(colBin)
					// Requests are the frontend's own count, never attributed.
					wantReq := map[string]string{"f1": "7", "f2": "0"}[g.Name]
					if g.Frontend.cell(colReqTot) != wantReq {
						t.Errorf("%s req_tot = %q, want %q", g.Name, g.Frontend.cell(colReqTot), wantReq)
					}
				}
			}
			for fe, want := range tt.want {
				if got[fe] != want {
					t.Errorf("%s bin = %q, want %q", fe, got[fe], want)
				}
			}
		})
	}
}
