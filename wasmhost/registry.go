package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/edgesync/edgesync/replica"
)

// Registry holds the compiled versions of named resolvers. It is what the
// hub (replica/hub.ResolverHost) loads uploads into and calls on conflicts.
type Registry struct {
	h       *Host
	mu      sync.RWMutex
	modules map[string]*Module // by "name@version"
}

// NewRegistry returns an empty registry on h.
func NewRegistry(h *Host) *Registry {
	return &Registry{h: h, modules: map[string]*Module{}}
}

func key(name string, version int) string { return name + "@" + strconv.Itoa(version) }

// Load compiles a resolver version. A module that is not a valid resolver is
// replica.ErrInvalid (the message says why), one over the size limit
// replica.ErrTooLarge.
func (r *Registry) Load(ctx context.Context, name string, version int, wasm []byte) error {
	m, err := r.h.Compile(ctx, wasm)
	switch {
	case errors.Is(err, ErrModuleTooLarge):
		return fmt.Errorf("%w: %v", replica.ErrTooLarge, err)
	case err != nil:
		return fmt.Errorf("%w: %v", replica.ErrInvalid, err)
	}
	r.mu.Lock()
	old := r.modules[key(name, version)]
	r.modules[key(name, version)] = m
	r.mu.Unlock()
	if old != nil {
		return old.Close(ctx)
	}
	return nil
}

// Module returns a loaded version, or nil.
func (r *Registry) Module(name string, version int) *Module {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.modules[key(name, version)]
}

// Resolve runs a loaded version on one conflict.
func (r *Registry) Resolve(ctx context.Context, name string, version int, in replica.ResolverInput) (replica.ResolverOutput, error) {
	m := r.Module(name, version)
	if m == nil {
		return replica.ResolverOutput{}, callErr(ReasonMissing, "resolver %s is not loaded on this hub", key(name, version))
	}
	out, _, err := m.Resolve(ctx, in)
	return out, err
}

// Stats returns a loaded version's call statistics (zero if not loaded).
func (r *Registry) Stats(name string, version int) Stats {
	if m := r.Module(name, version); m != nil {
		return m.Stats()
	}
	return Stats{Failures: map[string]int64{}}
}

// Counts returns a loaded version's call and failure counts, those it was
// seeded with included (zero if not loaded).
func (r *Registry) Counts(name string, version int) (int64, map[string]int64) {
	st := r.Stats(name, version)
	return st.Calls, st.Failures
}

// Seed adds counts kept from an earlier run to a loaded version's
// statistics (durations are not kept: p50 and p99 cover this run).
func (r *Registry) Seed(name string, version int, calls int64, failures map[string]int64) {
	if m := r.Module(name, version); m != nil {
		m.stats.seed(calls, failures)
	}
}

// Close closes every module.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for k, m := range r.modules {
		err = errors.Join(err, m.Close(ctx))
		delete(r.modules, k)
	}
	return err
}

// Limits returns the host's limits.
func (r *Registry) Limits() Limits { return r.h.limits }
