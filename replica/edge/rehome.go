package edge

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rehoming. An edge syncs with one hub of its list at a time. A round tries
// the hubs in list order; a hub that does not answer is followed at once by
// the next, and only when a whole round failed does the edge wait, with full
// jitter over a window that doubles from BaseBackoff up to MaxBackoff. When
// the session with a hub ends, the edge waits a jittered moment (at most
// BaseBackoff) and starts a round at the next hub of the list, so that a
// hub's edges do not all reconnect in the same instant. While it syncs with
// a hub other than the first, it probes the earlier ones in the background
// (GET /healthz, every ProbeInterval with jitter) and returns to the first
// that answers: it stops pushing, waits for the outcomes of the pushes in
// flight, closes the session and connects there.

// BaseBackoff is the window of the wait after a session ends, and after the
// first round in which no hub welcomed the edge. Each further failed round
// doubles it, up to SyncConfig.MaxBackoff.
const BaseBackoff = 500 * time.Millisecond

// DefaultProbeInterval is the default of SyncConfig.ProbeInterval.
const DefaultProbeInterval = 5 * time.Second

// stableSession is how long a session must have lasted for its end to reset
// the backoff: a hub that welcomes edges and drops them at once is retried
// with growing waits, as one that does not answer.
const stableSession = 10 * time.Second

// probeTimeout bounds one probe of an earlier hub.
const probeTimeout = 2 * time.Second

// drainTimeout bounds how long returning to an earlier hub waits for the
// outcomes of the pushes in flight. Past it the edge switches anyway: the
// next hub answers those versions again (pushes are idempotent by version
// id).
const drainTimeout = 10 * time.Second

// fullJitter is a wait uniform in [0, d].
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// hubChoice decides which hub of the list to try next and how long to wait
// before. Its randomness comes from jitter (uniform in [0, d]) so that
// tests can fix it.
type hubChoice struct {
	n      int
	limit  time.Duration // MaxBackoff
	jitter func(d time.Duration) time.Duration

	tried   int  // hubs tried in this round without a session
	rounds  int  // failed rounds (and unstable sessions) in a row
	refused bool // every hub tried in this round refused the token

	returning  int // the earlier hub a return is under way to; -1: none
	probeFails int // returns in a row that found no session
}

// maxProbeDoubling bounds how often failed returns double the probe
// interval (16 times the interval at most).
const maxProbeDoubling = 4

func newHubChoice(n int, limit time.Duration, jitter func(time.Duration) time.Duration) *hubChoice {
	return &hubChoice{n: n, limit: limit, jitter: jitter, refused: true, returning: -1}
}

// welcomed: hub i welcomed the edge. A return to it succeeded.
func (c *hubChoice) welcomed(i int) {
	if c.returning == i {
		c.probeFails = 0
	}
	c.returning = -1
}

// probeInterval is the probe interval for the session about to start:
// interval, doubled for each return in a row that found no session there
// (a hub that answers /healthz but refuses edges), so that the edge does
// not leave a working hub every few seconds for nothing.
func (c *hubChoice) probeInterval(interval time.Duration) time.Duration {
	return interval << min(c.probeFails, maxProbeDoubling)
}

// window is the backoff window after rounds failures: BaseBackoff doubled
// rounds-1 times, capped at limit.
func (c *hubChoice) window(rounds int, limit time.Duration) time.Duration {
	return min(limit, BaseBackoff<<min(max(rounds-1, 0), 20))
}

// lost: the session with hub i ended after the hub welcomed the edge. The
// next round starts at the hub after i (i itself comes last), after a wait
// of at most BaseBackoff; if the session did not last (stable false), the
// wait grows as after a failed round.
func (c *hubChoice) lost(i int, stable bool) (next int, wait time.Duration) {
	c.tried, c.refused = 0, true
	if stable {
		c.rounds = 0
	} else {
		c.rounds++
	}
	return (i + 1) % c.n, c.jitter(c.window(max(c.rounds, 1), c.limit))
}

// back: the edge leaves its hub for the earlier hub j, which answered a
// probe; it connects at once.
func (c *hubChoice) back(j int) (next int, wait time.Duration) {
	c.tried, c.rounds, c.refused, c.returning = 0, 0, true, j
	return j, 0
}

// failed: an attempt at hub i got no session (refused: the hub refused the
// token). The next hub of the round follows at once; after a whole round,
// the next starts at the first hub after a jittered wait whose window
// doubles with each failed round, capped at limit (MaxRejectedBackoff when
// every hub of the round refused the token).
func (c *hubChoice) failed(i int, refused bool) (next int, wait time.Duration) {
	if c.returning == i {
		c.probeFails++
	}
	c.returning = -1
	c.tried++
	c.refused = c.refused && refused
	if c.tried < c.n {
		return (i + 1) % c.n, 0
	}
	c.rounds++
	limit := c.limit
	if c.refused {
		limit = max(limit, MaxRejectedBackoff)
	}
	c.tried, c.refused = 0, true
	return 0, c.jitter(c.window(c.rounds, limit))
}

// probeWait is the wait before the next probe of earlier hubs: uniform in
// [interval/2, 3*interval/2].
func probeWait(interval time.Duration, jitter func(time.Duration) time.Duration) time.Duration {
	return interval/2 + jitter(interval)
}

// healthURL is the /healthz address of the hub whose sync endpoint is
// syncURL (as SyncURL returns it): same scheme family, host and path
// prefix.
func healthURL(syncURL string) (string, error) {
	u, err := url.Parse(syncURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v1/sync") + "/healthz"
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// probe reports whether the hub at health (a /healthz URL) answers 200.
func (s *Syncer) probe(ctx context.Context, health string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
	if err != nil {
		return false
	}
	resp, err := s.probes.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// prober runs while the edge syncs with hub i > 0: it probes the hubs
// before i in list order, every interval with jitter, and hands the first
// that answers to out.leave. It ends with the session.
func (s *Syncer) prober(ctx context.Context, i int, interval time.Duration, out *outQueue) error {
	for {
		t := time.NewTimer(probeWait(interval, s.jitter))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		for j := range i {
			if s.probe(ctx, s.health[j]) {
				s.log.Debug("earlier hub answers", "hub", s.urls[j])
				out.leave(j)
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// errReturn ends a session to return to the earlier hub of index hub;
// cause is set when the session ended otherwise while leaving.
type errReturn struct {
	hub   int
	cause error
}

func (e *errReturn) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("returning to hub %d of the list: %v", e.hub+1, e.cause)
	}
	return fmt.Sprintf("returning to hub %d of the list", e.hub+1)
}

func (e *errReturn) Unwrap() error { return e.cause }

// home is what the Syncers of one Link share in turn: the hub of the last
// session that got going, and how many times the edge moved between hubs.
type home struct {
	mu      sync.Mutex
	last    string
	rehomes atomic.Int64
}

// arrived records a session with hub u and reports the hub the edge came
// from, if it is another ("" for the first sync session or the same hub).
func (h *home) arrived(u string) (from string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last != "" && h.last != u {
		from = h.last
		h.rehomes.Add(1)
	}
	h.last = u
	return from
}

// lastHub is the hub of the last session that got going.
func (h *home) lastHub() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}
