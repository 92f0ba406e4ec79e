package edge_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/edge"
)

// msClock is a settable clock in unix milliseconds.
type msClock struct{ ms atomic.Int64 }

func (c *msClock) now() time.Time { return time.UnixMilli(c.ms.Load()) }

func openClockReplica(t *testing.T, dir string, clk *msClock) *edge.Replica {
	t.Helper()
	r := edge.New(edge.Config{Dir: dir, Durability: "normal", Now: clk.now})
	if err := r.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func writeTS(t *testing.T, r *edge.Replica, id string) int64 {
	t.Helper()
	it, _, err := r.Upsert(context.Background(), "products", id, []byte(`{"id":"`+id+`","category":"tools"}`), edge.WriteOptions{})
	if err != nil {
		t.Fatalf("Upsert(%s): %v", id, err)
	}
	return it.TS
}

// A write's _ts never goes backwards on one node: not when the clock steps
// back, not across a restart with the clock further back; it follows the
// clock again once the clock passes it.
func TestReplica_TSNeverBackwards(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := &msClock{}
	clk.ms.Store(1_800_000_000_500)
	r := openClockReplica(t, dir, clk)
	defineProducts(t, r)
	steps := []struct {
		name    string
		clockMs int64
		reopen  bool
		want    int64
	}{
		{name: "follows the clock", clockMs: 1_800_000_000_500, want: 1_800_000_000},
		{name: "clock a day back: held", clockMs: 1_800_000_000_500 - 86_400_000, want: 1_800_000_000},
		{name: "restart, clock an hour back: held", clockMs: 1_800_000_000_500 - 3_600_000, reopen: true, want: 1_800_000_000},
		{name: "clock moves past it: follows", clockMs: 1_800_000_007_000, want: 1_800_000_007},
		{name: "restart after a crash-free stop, clock back again: held", clockMs: 1_800_000_001_000, reopen: true, want: 1_800_000_007},
	}
	for i, s := range steps {
		clk.ms.Store(s.clockMs)
		if s.reopen {
			if err := r.Close(ctx); err != nil {
				t.Fatal(err)
			}
			r = openClockReplica(t, dir, clk)
		}
		if got := writeTS(t, r, fmt.Sprintf("p%d", i)); got != s.want {
			t.Fatalf("%s: _ts %d, want %d", s.name, got, s.want)
		}
		if got := r.Status().LastTS; got != s.want {
			t.Fatalf("%s: Status().LastTS %d, want %d", s.name, got, s.want)
		}
	}
	r.Close(ctx)
}

// ObserveHubClock takes the hub's clock from the pong to a ClockPing and
// sets the offset to the hub's clock minus the midpoint of the round trip;
// new writes' _ts use it, and a stored offset survives a restart. Pongs
// that do not answer a recent clock ping are ignored.
func TestReplica_ObserveHubClock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := &msClock{}
	const local = int64(1_800_003_600_000) // an hour ahead of the hub
	clk.ms.Store(local)
	r := openClockReplica(t, dir, clk)
	defineProducts(t, r)
	for _, bad := range []string{"", strconv.FormatInt(local, 10), "x y", fmt.Sprint(local+1, " 1"), fmt.Sprint(local-31_000, " 1800000000000"), "0 1800000000000"} {
		if measured, _ := r.ObserveHubClock(bad); measured {
			t.Fatalf("ObserveHubClock(%q) measured, want ignored", bad)
		}
	}
	if st := r.Status(); st.ClockMeasuredAt != 0 || st.ClockOffset != 0 {
		t.Fatalf("status %+v, want nothing measured", st)
	}
	ping := string(r.ClockPing())
	clk.ms.Store(local + 100) // the pong comes 100 ms later
	measured, save := r.ObserveHubClock(ping + " 1800000000050")
	if !measured || !save {
		t.Fatalf("ObserveHubClock: measured %v save %v, want both (first measurement)", measured, save)
	}
	st := r.Status()
	if st.ClockOffset != -3_600_000 || st.ClockRTT != 100 || st.ClockMeasuredAt != 1_800_000_000_050 {
		t.Fatalf("status %+v, want offset -3600000, rtt 100, measured at 1800000000050", st)
	}
	if got, want := writeTS(t, r, "p1"), int64(1_800_000_000); got != want {
		t.Fatalf("_ts %d, want %d (corrected)", got, want)
	}
	if err := r.SaveClock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, save := r.ObserveHubClock(string(r.ClockPing()) + " 1800000000200"); save {
		t.Fatal("an unchanged offset asks to be saved again")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	clk.ms.Store(local + 10_000)
	r = openClockReplica(t, dir, clk)
	defer r.Close(ctx)
	if st := r.Status(); st.ClockOffset != -3_600_000 || st.ClockMeasuredAt != 1_800_000_000_050 {
		t.Fatalf("after a restart, status %+v: want the stored offset", st)
	}
	if got, want := writeTS(t, r, "p2"), int64(1_800_000_010); got != want {
		t.Fatalf("offline after a restart: _ts %d, want %d (the stored offset)", got, want)
	}
}
