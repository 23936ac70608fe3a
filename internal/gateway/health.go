package gateway

import (
	"sort"

	"github.com/sluice-gateway/sluice/internal/telemetry"
)

// backendStates reports every Backend of the snapshot in force, for the metrics and the
// admin API.
func (g *Gateway) backendStates() []telemetry.BackendState {
	st := g.state.Load()
	if st == nil {
		return nil
	}
	out := make([]telemetry.BackendState, 0, len(st.snap.Backends))
	for ref, b := range st.snap.Backends {
		up := b.Upstream
		s := telemetry.BackendState{Backend: ref, Up: !up.Ejected(), InFlight: up.InFlight()}
		if up.Pool != nil {
			for _, e := range up.Pool.Endpoints() {
				s.Endpoints = append(s.Endpoints, telemetry.EndpointState{Address: e.Address(), Up: !e.Health().Ejected(), InFlight: e.InFlight()})
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Backend < out[j].Backend })
	return out
}

// BackendStates is the health of every Backend in force (the admin API).
func (g *Gateway) BackendStates() []telemetry.BackendState { return g.backendStates() }
