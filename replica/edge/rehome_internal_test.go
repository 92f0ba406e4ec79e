package edge

import (
	"testing"
	"time"
)

// widest is a jitter source that always takes the whole window, so that a
// test sees the window itself.
func widest(d time.Duration) time.Duration { return d }

type step struct {
	name string
	do   func(c *hubChoice) (int, time.Duration)
	next int
	wait time.Duration
}

func runSteps(t *testing.T, c *hubChoice, steps []step) {
	t.Helper()
	for _, st := range steps {
		next, wait := st.do(c)
		if next != st.next {
			t.Fatalf("%s: next hub %d, want %d", st.name, next, st.next)
		}
		if wait != st.wait {
			t.Fatalf("%s: wait %s, want %s", st.name, wait, st.wait)
		}
	}
}

func failed(i int) func(c *hubChoice) (int, time.Duration) {
	return func(c *hubChoice) (int, time.Duration) { return c.failed(i, false) }
}

func refused(i int) func(c *hubChoice) (int, time.Duration) {
	return func(c *hubChoice) (int, time.Duration) { return c.failed(i, true) }
}

func lost(i int, stable bool) func(c *hubChoice) (int, time.Duration) {
	return func(c *hubChoice) (int, time.Duration) { return c.lost(i, stable) }
}

func back(j int) func(c *hubChoice) (int, time.Duration) {
	return func(c *hubChoice) (int, time.Duration) { return c.back(j) }
}

// A hub that does not answer is followed at once by the next of the list;
// only a whole failed round waits, and the window doubles up to the cap.
func TestHubChoice_FailsOverAtOnceAndBacksOffPerRound(t *testing.T) {
	c := newHubChoice(3, 3*time.Second, widest)
	runSteps(t, c, []step{
		{name: "first hub down", do: failed(0), next: 1, wait: 0},
		{name: "second hub down", do: failed(1), next: 2, wait: 0},
		{name: "round 1 failed", do: failed(2), next: 0, wait: BaseBackoff},
		{name: "round 2, hub 0", do: failed(0), next: 1, wait: 0},
		{name: "round 2, hub 1", do: failed(1), next: 2, wait: 0},
		{name: "round 2 failed", do: failed(2), next: 0, wait: 2 * BaseBackoff},
		{name: "round 3", do: failed(0), next: 1},
		{name: "round 3", do: failed(1), next: 2},
		{name: "round 3 failed", do: failed(2), next: 0, wait: 4 * BaseBackoff},
		{name: "round 4", do: failed(0), next: 1},
		{name: "round 4", do: failed(1), next: 2},
		{name: "round 4 failed: capped", do: failed(2), next: 0, wait: 3 * time.Second},
	})
}

// The end of a session moves the edge to the next hub of the list after a
// wait of at most BaseBackoff, whatever came before; the hub it lost comes
// last in the round.
func TestHubChoice_LostHubMovesToNext(t *testing.T) {
	c := newHubChoice(3, 10*time.Second, widest)
	runSteps(t, c, []step{
		{name: "round 1 failed", do: failed(0), next: 1},
		{name: "round 1 failed", do: failed(1), next: 2},
		{name: "round 1 failed", do: failed(2), next: 0, wait: BaseBackoff},
		{name: "lost hub 0 after a stable session", do: lost(0, true), next: 1, wait: BaseBackoff},
		{name: "hub 1 down", do: failed(1), next: 2, wait: 0},
		{name: "hub 2 down", do: failed(2), next: 0, wait: 0},
		{name: "hub 0 down: round failed", do: failed(0), next: 0, wait: BaseBackoff},
		{name: "lost the last hub", do: lost(2, true), next: 0, wait: BaseBackoff},
	})
	one := newHubChoice(1, 10*time.Second, widest)
	runSteps(t, one, []step{
		{name: "only hub lost", do: lost(0, true), next: 0, wait: BaseBackoff},
		{name: "only hub down", do: failed(0), next: 0, wait: BaseBackoff},
		{name: "only hub down again", do: failed(0), next: 0, wait: 2 * BaseBackoff},
	})
}

// A hub that welcomes the edge and drops it at once is not retried at the
// rate of BaseBackoff: the waits grow as after failed rounds.
func TestHubChoice_UnstableSessionsBackOff(t *testing.T) {
	c := newHubChoice(1, 10*time.Second, widest)
	runSteps(t, c, []step{
		{name: "dropped at once", do: lost(0, false), next: 0, wait: BaseBackoff},
		{name: "dropped at once again", do: lost(0, false), next: 0, wait: 2 * BaseBackoff},
		{name: "and again", do: lost(0, false), next: 0, wait: 4 * BaseBackoff},
		{name: "a session that lasted", do: lost(0, true), next: 0, wait: BaseBackoff},
	})
}

// While every hub refuses the token, the wait may grow past MaxBackoff up
// to MaxRejectedBackoff; one hub that does not refuse keeps the usual cap.
func TestHubChoice_RefusedTokenWaitsLonger(t *testing.T) {
	c := newHubChoice(2, time.Second, widest)
	var steps []step
	for n := range 12 {
		want := min(MaxRejectedBackoff, BaseBackoff<<n)
		steps = append(steps,
			step{name: "hub 0 refuses", do: refused(0), next: 1},
			step{name: "hub 1 refuses: round failed", do: refused(1), next: 0, wait: want})
	}
	runSteps(t, c, steps)
	runSteps(t, c, []step{
		{name: "hub 0 refuses", do: refused(0), next: 1},
		{name: "hub 1 does not answer: usual cap", do: failed(1), next: 0, wait: time.Second},
	})
}

// Returning to an earlier hub connects at once; if that hub fails after
// all, the round goes on down the list, back to where the edge came from.
func TestHubChoice_BackToEarlierHub(t *testing.T) {
	c := newHubChoice(3, 10*time.Second, widest)
	runSteps(t, c, []step{
		{name: "hub 0 down", do: failed(0), next: 1},
		{name: "back to hub 0", do: back(0), next: 0, wait: 0},
		{name: "hub 0 fails after all", do: failed(0), next: 1, wait: 0},
		{name: "hub 1 fails too", do: failed(1), next: 2, wait: 0},
		{name: "round failed", do: failed(2), next: 0, wait: BaseBackoff},
	})
}

// After a hub restart its edges spread their first reconnection over
// BaseBackoff instead of arriving together: with 10,000 edges, no tenth of
// the window gets much more than a tenth of them, and none waits longer
// than the window.
func TestHubChoice_ReconnectsSpreadOverTheWindow(t *testing.T) {
	const edges, buckets = 10000, 10
	var count [buckets + 1]int
	for range edges {
		c := newHubChoice(1, 10*time.Second, fullJitter)
		_, wait := c.lost(0, true)
		if wait < 0 || wait > BaseBackoff {
			t.Fatalf("wait %s, want within [0, %s]", wait, BaseBackoff)
		}
		count[int(wait*buckets/BaseBackoff)]++
	}
	count[buckets-1] += count[buckets]
	for b, n := range count[:buckets] {
		// The mean is 1,000 with a standard deviation of 30.
		if n > 1200 || n < 800 {
			t.Fatalf("%d of %d edges reconnect in tenth %d of the window, want about %d: %v", n, edges, b, edges/buckets, count[:buckets])
		}
	}
}

func TestProbeWait_Bounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter func(time.Duration) time.Duration
		want   time.Duration
	}{
		{name: "least", jitter: func(time.Duration) time.Duration { return 0 }, want: 2500 * time.Millisecond},
		{name: "most", jitter: widest, want: 7500 * time.Millisecond},
	} {
		if got := probeWait(5*time.Second, tc.jitter); got != tc.want {
			t.Fatalf("%s: probeWait(5s)=%s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ name, sync, want string }{
		{name: "plain", sync: "ws://127.0.0.1:8080/api/v1/sync", want: "http://127.0.0.1:8080/healthz"},
		{name: "tls", sync: "wss://hub.example/api/v1/sync", want: "https://hub.example/healthz"},
		{name: "path prefix", sync: "wss://proxy.example/edgesync/api/v1/sync?x=1", want: "https://proxy.example/edgesync/healthz"},
	} {
		got, err := healthURL(tc.sync)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Fatalf("%s: healthURL(%q)=%q, want %q", tc.name, tc.sync, got, tc.want)
		}
	}
}

// A move between hubs counts once; the first sync session or a reconnection to
// the same hub is no move.
func TestHome_Arrived(t *testing.T) {
	var h home
	for _, tc := range []struct {
		name, hub, from string
		rehomes         int64
	}{
		{name: "first sync session", hub: "ws://a", from: "", rehomes: 0},
		{name: "same hub again", hub: "ws://a", from: "", rehomes: 0},
		{name: "to b", hub: "ws://b", from: "ws://a", rehomes: 1},
		{name: "back to a", hub: "ws://a", from: "ws://b", rehomes: 2},
	} {
		if from := h.arrived(tc.hub); from != tc.from {
			t.Fatalf("%s: arrived(%q) from %q, want %q", tc.name, tc.hub, from, tc.from)
		}
		if got := h.rehomes.Load(); got != tc.rehomes {
			t.Fatalf("%s: rehomes=%d, want %d", tc.name, got, tc.rehomes)
		}
	}
}

// A hub that answers probes but refuses edges does not pull the edge off a
// working hub every probe interval: each failed return doubles the
// interval, up to 16 times; a return that works restores it.
func TestHubChoice_FailedReturnsSlowProbes(t *testing.T) {
	c := newHubChoice(2, 10*time.Second, widest)
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 16} {
		if got := c.probeInterval(time.Second); got != want*time.Second {
			t.Fatalf("probeInterval(1s)=%s, want %s", got, want*time.Second)
		}
		c.back(0)
		c.failed(0, false) // the first hub refuses
		c.failed(1, false) // and the edge is back on the second
		c.welcomed(1)
	}
	c.back(0)
	c.welcomed(0)
	if got := c.probeInterval(time.Second); got != time.Second {
		t.Fatalf("probeInterval(1s)=%s after a return that worked, want 1s", got)
	}
}
