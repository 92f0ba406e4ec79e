package hub

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultMaxClockSkew is how far ahead of the hub's clock a pushed _ts may
// be before decisions take the hub's receipt time instead.
const DefaultMaxClockSkew = 60 * time.Second

// decisionTS is the time a pushed version with _ts ts takes part in
// conflict decisions with, received at now (unix seconds): ts itself,
// unless it is ahead of now by more than the tolerance; then now, and
// clamped is true. It depends on nothing but its arguments and the
// configured tolerance, so the same pushes received at the same times
// decide the same way.
func (h *Hub) decisionTS(ts, now int64) (decide int64, clamped bool) {
	if ts > now+int64(h.cfg.MaxClockSkew/time.Second) {
		return now, true
	}
	return ts, false
}

// clampNote is what a conflict's reason gains when the incoming _ts was
// clamped.
func clampNote(ts, decided int64) string {
	return fmt.Sprintf("; incoming _ts %d was ahead of the hub clock, decided as %d", ts, decided)
}

// ClampedTotal is the number of pushed versions whose _ts the hub clamped,
// summed over the registered edges.
func (h *Hub) ClampedTotal(ctx context.Context) (int64, error) { return h.st.ClampedTotal(ctx) }

// MaxClockSkew is the configured tolerance for a pushed _ts.
func (h *Hub) MaxClockSkew() time.Duration { return h.cfg.MaxClockSkew }

// sessionClock is an edge's clock as a sync session measures it: each ping
// from the edge carries the edge's clock (unix milliseconds), and the skew
// is that minus the hub's clock at receipt. The measurement is off by the
// ping's one-way delay, which the pong's round trip bounds for the edge.
type sessionClock struct {
	skewMs     atomic.Int64
	measuredAt atomic.Int64 // hub unix seconds; 0: not measured
}

// maxClockPayload bounds the ping payload read as a clock (a control
// frame carries at most 125 bytes anyway).
const maxClockPayload = 32

// parseClockPing returns the edge's clock from a ping payload: a decimal
// number of unix milliseconds. ok is false for anything else (an empty
// ping from an older edge included).
func parseClockPing(data string) (ms int64, ok bool) {
	if data == "" || len(data) > maxClockPayload {
		return 0, false
	}
	ms, err := strconv.ParseInt(data, 10, 64)
	return ms, err == nil && ms > 0
}

// clockPong is the pong answering a ping with the edge's clock: the ping's
// payload, a space, and the hub's clock in unix milliseconds. Any other
// ping is echoed as it came.
func clockPong(data string, now time.Time) string {
	if _, ok := parseClockPing(data); !ok {
		return data
	}
	return data + " " + strconv.FormatInt(now.UnixMilli(), 10)
}

// observe records a measurement from a ping that carried the edge's clock.
func (c *sessionClock) observe(data string, now time.Time) {
	ms, ok := parseClockPing(data)
	if !ok {
		return
	}
	c.skewMs.Store(ms - now.UnixMilli())
	c.measuredAt.Store(now.Unix())
}

// withoutClamps clears the clampedTs of conflicts going into a frame: a
// protocol 1 peer decodes frames strictly and does not know the field.
func withoutClamps(cs []Conflict) {
	for i := range cs {
		for _, v := range []*ConflictVersion{cs[i].Incoming, cs[i].Existing, cs[i].Base} {
			if v != nil {
				v.ClampedTS = 0
			}
		}
	}
}

// recordClock stores an edge's last measured clock skew.
func (h *Hub) recordClock(ctx context.Context, name string, skewMs, at int64) error {
	return h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.RecordClock(ctx, name, skewMs, at)
	}, nil)
}

// clockSuspect reports whether an edge's clock deserves a flag: a skew
// beyond the tolerance, or any version clamped.
func (h *Hub) clockSuspect(skewMs, clamped int64) bool {
	tol := h.cfg.MaxClockSkew.Milliseconds()
	return clamped > 0 || skewMs > tol || skewMs < -tol
}
