package picker

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/outlier"
)

// BenchmarkPick measures one Pick and Done over 8 endpoints with fresh metrics.
func BenchmarkPick(b *testing.B) {
	for _, s := range []Strategy{LeastOutstanding, LoadAware, PrefixAffinity} {
		for _, health := range []bool{false, true} {
			name := s.String()
			if health {
				name += "/outlier"
			}
			b.Run(name, func(b *testing.B) {
				cfg := Config{Strategy: s, Addresses: addrs(8), Metrics: &MetricsConfig{Client: http.DefaultClient}}
				if health {
					cfg.Outlier = &outlier.Config{}
				}
				p := mustNew(b, cfg)
				now := time.Now()
				for i, e := range p.Endpoints() {
					e.metrics.Store(&Metrics{Waiting: float64(i % 3), KVCache: 0.1 * float64(i), At: now})
					e.inflight.Add(int64(i % 4)) // some load, so bounds and scores matter
				}
				hashes := prefixHashes(64)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					e, _ := p.Pick(Request{PrefixHash: hashes[i&63], HasPrefix: true})
					e.Done()
					i++
				}
			})
		}
	}
}

func BenchmarkPickPreferred(b *testing.B) {
	p := mustNew(b, Config{Addresses: addrs(8)})
	pref := fmt.Sprintf("10.9.9.9:1,%s", addrs(8)[5])
	b.ReportAllocs()
	for b.Loop() {
		e, _ := p.Pick(Request{Preferred: pref})
		e.Done()
	}
}
