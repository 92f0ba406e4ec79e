package wasmhost

import "context"

// NewUnmetered returns a host that does not instrument modules, to measure
// what metering costs. Never outside benchmarks: it has no fuel limit.
func NewUnmetered(ctx context.Context, cfg Config) (*Host, error) {
	h, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	h.unmetered = true
	return h, nil
}
