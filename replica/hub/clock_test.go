package hub_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// testClock is a settable clock in unix seconds.
type testClock struct{ sec atomic.Int64 }

func (c *testClock) now() time.Time { return time.Unix(c.sec.Load(), 0) }

// newClockHub opens a hub whose clock is clk, with the containers of
// newPushHub.
func newClockHub(t *testing.T, clk *testClock) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), Now: clk.now})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, c := range []replica.Container{
		{Name: "c", PartitionKey: "/pk"},
		{Name: "prio", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeLWW, Path: "/prio"}},
		{Name: "m", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeMerge}},
	} {
		if _, _, err := h.PutContainer(ctx, c); err != nil {
			t.Fatalf("PutContainer(%s): %v", c.Name, err)
		}
	}
	return h
}

func changeOf(t *testing.T, h *hub.Hub, container, version string) replica.Change {
	t.Helper()
	chs, _, err := h.Changes(context.Background(), container, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chs {
		if c.Version == version {
			return c
		}
	}
	t.Fatalf("no change record of %s", version)
	return replica.Change{}
}

// A version pushed with a _ts an hour ahead of the hub's clock cannot win
// against a write made later: it takes part in decisions with the hub's
// receipt time, and the change record and the conflicts feed keep its _ts
// and say what decided.
func TestHub_PushFutureTSCannotWin(t *testing.T) {
	const t0 = int64(1_800_000_000)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		container string
		aBody     string // the fast clock's write, pushed at t0
		bBody     string // the correct clock's write, pushed at t0+2
		aWins     bool
	}{
		{name: "lww on _ts", container: "c", aBody: `{"pk":"a","v":"fast"}`, bBody: `{"pk":"a","v":"late"}`},
		{name: "lww on a custom path falls back to the clamped _ts", container: "prio", aBody: `{"pk":"a"}`, bBody: `{"pk":"a"}`},
		{name: "lww on a custom path is unaffected", container: "prio", aBody: `{"pk":"a","prio":9}`, bBody: `{"pk":"a","prio":1}`, aWins: true},
		{name: "merge takes the clamped _ts on a clash", container: "m", aBody: `{"pk":"a","v":"fast"}`, bBody: `{"pk":"a","v":"late"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &testClock{}
			clk.sec.Store(t0)
			h := newClockHub(t, clk)
			a := pushV(tc.container, "x", replica.OpCreate, "fast-1", "", t0+3600, tc.aBody)
			doPush(t, h, pushBatch{node: "fast", versions: []wire.Version{a}})
			clk.sec.Store(t0 + 2)
			b := pushV(tc.container, "x", replica.OpCreate, "slow-1", "", t0+2, tc.bBody)
			out := doPush(t, h, pushBatch{node: "slow", versions: []wire.Version{b}})
			it, err := h.Get(ctx, tc.container, "x")
			if err != nil {
				t.Fatal(err)
			}
			winner := "slow-1"
			if tc.aWins {
				winner = "fast-1"
			}
			if tc.container == "m" {
				if got, want := field(t, it, "v"), "late"; got != want {
					t.Fatalf("merged v=%v, want %v (outcome %+v)", got, want, out[0])
				}
			} else if it.Version != winner {
				t.Fatalf("winner %s, want %s (outcome %+v)", it.Version, winner, out[0])
			}
			ch := changeOf(t, h, tc.container, "fast-1")
			if ch.TS != t0+3600 || ch.ClampedTS != t0 {
				t.Fatalf("change record of the fast write: ts %d clampedTs %d, want %d and %d", ch.TS, ch.ClampedTS, t0+3600, t0)
			}
			cs := pushConflicts(t, h, tc.container)
			if len(cs) != 1 || cs[0].Existing == nil || cs[0].Existing.Version != "fast-1" {
				t.Fatalf("conflicts=%+v, want one over fast-1", cs)
			}
			if got := cs[0].Existing; got.TS != t0+3600 || got.ClampedTS != t0 {
				t.Fatalf("conflict's existing side: ts %d clampedTs %d, want %d and %d", got.TS, got.ClampedTS, t0+3600, t0)
			}
			if cs[0].Incoming.ClampedTS != 0 {
				t.Fatalf("incoming side clampedTs %d, want 0", cs[0].Incoming.ClampedTS)
			}
		})
	}
}

// The later write wins when it is the one from the fast clock: it is
// decided at its receipt time, after the correct write, and the reason says
// so.
func TestHub_PushFutureTSLaterWriteWins(t *testing.T) {
	const t0 = int64(1_800_000_000)
	clk := &testClock{}
	clk.sec.Store(t0)
	h := newClockHub(t, clk)
	doPush(t, h, pushBatch{node: "slow", versions: []wire.Version{pushV("c", "x", replica.OpCreate, "slow-1", "", t0, "")}})
	clk.sec.Store(t0 + 2)
	out := doPush(t, h, pushBatch{node: "fast", versions: []wire.Version{pushV("c", "x", replica.OpReplace, "fast-1", "", t0+2+3600, "")}})
	if out[0].Outcome != replica.OutcomeConfirmed {
		t.Fatalf("outcome %+v, want confirmed", out[0])
	}
	if ch := changeOf(t, h, "c", "fast-1"); ch.ClampedTS != t0+2 {
		t.Fatalf("clampedTs %d, want %d", ch.ClampedTS, t0+2)
	}
	cs := pushConflicts(t, h, "c")
	if len(cs) != 1 || cs[0].Incoming.ClampedTS != t0+2 {
		t.Fatalf("conflicts=%+v, want one whose incoming side was clamped to %d", cs, t0+2)
	}
	if want := fmt.Sprintf("lww: incoming wins; incoming _ts %d was ahead of the hub clock, decided as %d", t0+2+3600, t0+2); cs[0].Reason != want {
		t.Fatalf("reason %q, want %q", cs[0].Reason, want)
	}
}

// A _ts ahead of the hub's clock by no more than the tolerance still
// decides as it is.
func TestHub_PushTSWithinToleranceDecides(t *testing.T) {
	const t0 = int64(1_800_000_000)
	clk := &testClock{}
	clk.sec.Store(t0)
	h := newClockHub(t, clk)
	doPush(t, h, pushBatch{node: "fast", versions: []wire.Version{pushV("c", "x", replica.OpCreate, "fast-1", "", t0+60, "")}})
	clk.sec.Store(t0 + 2)
	doPush(t, h, pushBatch{node: "slow", versions: []wire.Version{pushV("c", "x", replica.OpCreate, "slow-1", "", t0+2, "")}})
	it, err := h.Get(context.Background(), "c", "x")
	if err != nil {
		t.Fatal(err)
	}
	if it.Version != "fast-1" {
		t.Fatalf("winner %s, want fast-1 (60 s ahead is within the default tolerance)", it.Version)
	}
	if ch := changeOf(t, h, "c", "fast-1"); ch.ClampedTS != 0 {
		t.Fatalf("clampedTs %d, want 0", ch.ClampedTS)
	}
}

// The same pushes in the same order, received at the same hub times, give
// the same log, items and conflicts on every run, clamps included.
func TestHub_PushClockDeterministic(t *testing.T) {
	const t0 = int64(1_800_000_000)
	type step struct {
		at    int64
		batch pushBatch
	}
	rng := rand.New(rand.NewPCG(23, 1))
	var steps []step
	heads := map[string]string{}
	for i := range 200 {
		node := []string{"fast", "slow", "behind"}[rng.IntN(3)]
		skew := map[string]int64{"fast": 3600, "slow": 0, "behind": -3600}[node]
		at := t0 + int64(i)
		id := fmt.Sprintf("x%d", rng.IntN(8))
		base := ""
		if rng.IntN(2) == 0 {
			base = heads[id] // sometimes the writer saw the head, sometimes not
		}
		v := pushV("c", id, replica.OpReplace, fmt.Sprintf("%s-%d", node, i), base, at+skew+int64(rng.IntN(5)), fmt.Sprintf(`{"pk":"a","n":%d}`, i))
		heads[id] = v.Version
		steps = append(steps, step{at: at, batch: pushBatch{node: node, versions: []wire.Version{v}}})
	}
	run := func() (any, int64) {
		clk := &testClock{}
		h := newClockHub(t, clk)
		for _, s := range steps {
			clk.sec.Store(s.at)
			doPush(t, h, s.batch)
		}
		chs, _, err := h.Changes(context.Background(), "c", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var clamped int64
		for _, c := range chs {
			if c.ClampedTS != 0 {
				clamped++
			}
		}
		page, err := h.List(context.Background(), "c", hub.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return []any{chs, page.Items, pushConflicts(t, h, "c")}, clamped
	}
	first, clamped := run()
	if clamped == 0 {
		t.Fatal("no version was clamped: the test decides nothing about clamps")
	}
	for range 2 {
		again, _ := run()
		if !reflect.DeepEqual(first, again) {
			t.Fatal("the same pushes gave different results")
		}
	}
}

// An edge whose clock is an hour ahead measures its offset from the hub at
// the welcome: the hub's edge list shows its skew, its status shows the
// offset, and its next write has a corrected _ts that the hub does not
// clamp.
func TestSync_EdgeClockOffsetMeasured(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	tok, err := c.hub.RegisterEdge(ctx, "fast", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEdge{dir: t.TempDir(), name: "fast", tok: tok, c: c}
	e.r = edge.New(edge.Config{Dir: e.dir, Durability: "normal", Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err := e.r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	e.connect()
	if _, _, err := e.r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if st := e.r.Status(); st.ClockMeasuredAt == 0 {
			return fmt.Errorf("no offset measured: %+v", st)
		}
		return nil
	})
	if off := e.r.Status().ClockOffset; off > -3599_000 || off < -3601_000 {
		t.Fatalf("clockOffset %d ms, want about -3600000", off)
	}
	it, err := e.r.Create(ctx, "c", []byte(`{"id":"x","pk":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := it.TS - time.Now().Unix(); d < -2 || d > 2 {
		t.Fatalf("_ts %d is %d s off the real time, want corrected", it.TS, d)
	}
	eventually(t, 5*time.Second, e.synced)
	eventually(t, 15*time.Second, func() error {
		es, err := c.hub.Edges(ctx)
		if err != nil {
			return err
		}
		if len(es) != 1 || es[0].ClockMeasuredAt == 0 {
			return fmt.Errorf("edges=%+v, want the skew measured", es)
		}
		if s := es[0].ClockSkew; s < 3599_000 || s > 3601_000 || !es[0].ClockSuspect || es[0].Clamped != 0 {
			return fmt.Errorf("edge %+v, want a skew of about +3600000 ms, flagged, nothing clamped", es[0])
		}
		return nil
	})
}
