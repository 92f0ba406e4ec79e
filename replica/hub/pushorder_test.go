package hub_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
)

// pushHeld pushes versions and checks that the push was decided only up to
// its first decided outcomes: decided of them, the rest held back.
func pushHeld(t *testing.T, h *hub.Hub, node string, decided int, versions ...wire.Version) []wire.Outcome {
	t.Helper()
	out, _, err := h.Push(context.Background(), node, nil, versions)
	if !errors.Is(err, hub.ErrPushOutOfOrder) {
		t.Fatalf("Push(%v)=%+v, %v; want %v", versions, out, err, hub.ErrPushOutOfOrder)
	}
	if len(out) != decided {
		t.Fatalf("Push decided %d versions (%+v), want %d", len(out), out, decided)
	}
	return out
}

// TestHub_PushOutOfOrderWaitsForItsBase: an edge wrote v1 (a create of
// x), w (another item), then v2 over v1 and v3, and its push of v1 did not
// reach the hub first (another route, or v1's push failed) while the push
// of w, v2 and v3 did. w is decided, v2 is not, and neither is the rest of
// its push nor a later version of the node (v3 again), until v1 is: then v1
// and v2 are each confirmed once, v2 over v1 without a conflict, in the
// order the edge wrote them.
func TestHub_PushOutOfOrderWaitsForItsBase(t *testing.T) {
	h := newPushHub(t)
	ctx := context.Background()
	v1 := pushV("m", "x", replica.OpCreate, "n1-1", "", 1, `{"pk":"a","n":1}`)
	w := pushV("m", "w", replica.OpCreate, "n1-2", "", 1, `{"pk":"a"}`)
	v2 := pushV("m", "x", replica.OpReplace, "n1-3", "n1-1", 2, `{"pk":"a","n":2}`)
	v3 := pushV("m", "y", replica.OpCreate, "n1-4", "", 3, `{"pk":"a"}`)
	other := pushV("m", "z", replica.OpCreate, "n2-1", "", 1, `{"pk":"a"}`)

	before := h.PushesOutOfOrder()
	if o := pushHeld(t, h, "n1", 1, w, v2, v3)[0]; o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("outcome of w=%+v, want confirmed", o)
	}
	pushHeld(t, h, "n1", 0, v3)
	if got := h.PushesOutOfOrder() - before; got != 2 {
		t.Fatalf("PushesOutOfOrder() counted %d pushes, want 2", got)
	}
	// Another node's pushes are not held.
	if o := doPush(t, h, pushBatch{node: "n2", versions: []wire.Version{other}})[0]; o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("other node's outcome=%+v, want confirmed", o)
	}
	for _, id := range []string{"x", "y"} {
		if _, err := h.Get(ctx, "m", id); !errors.Is(err, replica.ErrNotFound) {
			t.Fatalf("Get(m/%s) err=%v before v1 was pushed, want not found", id, err)
		}
	}

	// The edge's next session pushes its outbox in order.
	out := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{v1, w, v2, v3}})
	for i, o := range out {
		if o.Outcome != wire.OutcomeConfirmed || o.ConflictID != 0 {
			t.Fatalf("outcome %d=%+v, want confirmed without a conflict", i, o)
		}
	}
	checkPushState(t, h, pushState{"m", "x", "n1-3", map[string]any{"n": 2.0}})
	if cs := pushConflicts(t, h, "m"); len(cs) != 0 {
		t.Fatalf("conflicts=%+v, want none", cs)
	}
	// Each once: pushed again, every version gets the outcome it got.
	again := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{v1, w, v2, v3}})
	for i := range out {
		if again[i] != out[i] {
			t.Fatalf("pushed again, outcome %d=%+v, want %+v", i, again[i], out[i])
		}
	}
	changes, _, err := h.Changes(ctx, "m", 0, 100)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Version)
	}
	if want := []string{"n1-2", "n2-1", "n1-1", "n1-3", "n1-4"}; !slices.Equal(got, want) {
		t.Fatalf("log versions=%v, want %v", got, want)
	}
}

// TestHub_PushHeldVersionPushedAgainIsDecided: a version held back for a
// base that never comes (the edge no longer has it, or the hub rejected
// it) is decided when it is pushed again, as a version over a base the hub
// does not know.
func TestHub_PushHeldVersionPushedAgainIsDecided(t *testing.T) {
	h := newPushHub(t)
	v2 := pushV("m", "x", replica.OpCreate, "n1-2", "n1-1", 2, `{"pk":"a","n":2}`)
	pushHeld(t, h, "n1", 0, v2)
	if o := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{v2}})[0]; o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("held version pushed again: outcome=%+v, want confirmed", o)
	}

	// n1-3 is rejected (no partition key); n1-4, written over it in the
	// same push, is held, and decided when pushed again.
	bad := pushV("m", "y", replica.OpCreate, "n1-3", "", 3, `{"n":3}`)
	over := pushV("m", "y", replica.OpCreate, "n1-4", "n1-3", 4, `{"pk":"a","n":4}`)
	if o := pushHeld(t, h, "n1", 1, bad, over)[0]; o.Outcome != wire.OutcomeRejected {
		t.Fatalf("outcome=%+v, want rejected", o)
	}
	first := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{over}})[0]
	if first.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("version over a rejected one pushed again: outcome=%+v, want confirmed", first)
	}
	checkPushState(t, h, pushState{"m", "y", "n1-4", map[string]any{"n": 4.0}})
	// Decided, it is not held again: pushed once more (its outcome lost
	// with a connection), it gets the outcome it got, and the node's next
	// version is decided.
	if o := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{over}})[0]; o != first {
		t.Fatalf("pushed once more: outcome=%+v, want %+v", o, first)
	}
	next := pushV("m", "y", replica.OpReplace, "n1-5", "n1-4", 5, `{"pk":"a","n":5}`)
	if o := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{next}})[0]; o.Outcome != wire.OutcomeConfirmed || o.ConflictID != 0 {
		t.Fatalf("next version: outcome=%+v, want confirmed without a conflict", o)
	}
}

// TestHub_PushHoldEnds: a held version that is not pushed again holds its
// node's later versions up for a bounded time only.
func TestHub_PushHoldEnds(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(1_700_000_000)
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "m", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	v2 := pushV("m", "x", replica.OpReplace, "n1-2", "n1-1", 2, `{"pk":"a"}`)
	v3 := pushV("m", "y", replica.OpCreate, "n1-3", "", 3, `{"pk":"a"}`)
	pushHeld(t, h, "n1", 0, v2)
	now.Add(60)
	pushHeld(t, h, "n1", 0, v3)
	now.Add(int64((5 * time.Minute).Seconds()))
	if o := doPush(t, h, pushBatch{node: "n1", versions: []wire.Version{v3}})[0]; o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("outcome=%+v after the hold's time, want confirmed", o)
	}
}

// pausedTier is a tier whose sequencer leaves the queue of forwarded
// decisions alone while paused is set, as a sequencer busy with a backlog
// or one that has just taken the lease and not read the queue yet.
type pausedTier struct {
	*pghub.Tier
	paused *atomic.Bool
}

func (p pausedTier) Pending(ctx context.Context, skip []int64, limit int) ([]hub.Forwarded, error) {
	if p.paused.Load() {
		return nil, nil
	}
	return p.Tier.Pending(ctx, skip, limit)
}

// openTierHub opens a hub named name of a tier on the database url, whose
// tier is wrap(the hub's pghub.Tier).
func openTierHub(t *testing.T, url, name string, wrap func(*pghub.Tier) hub.Tier) *hub.Hub {
	t.Helper()
	ctx := context.Background()
	st := pghub.New(pghub.Config{URL: url, MaxConns: 4})
	tier := pghub.NewTier(pghub.TierConfig{Store: st, Name: name, LeaseTimeout: time.Second, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: st, Name: name, Tier: wrap(tier)})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// TestTier_PushHeldWaitsForItsBaseInTheQueue: an edge pushed v1 (over the
// hub's version of x) to hub b, which does not sequence: it waits in the
// tier's queue. The edge moved to the sequencer a and pushed v2, written
// over v1: held. Pushed again while v1 still waits in the queue, v2 is
// held again (v1 is on its way, not lost); once the sequencer decides v1
// from the queue, v2 pushed again is decided over it, without a conflict,
// in the order the edge wrote them.
func TestTier_PushHeldWaitsForItsBaseInTheQueue(t *testing.T) {
	url := pgtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var paused atomic.Bool
	a := openTierHub(t, url, "a", func(tier *pghub.Tier) hub.Tier { return pausedTier{tier, &paused} })
	b := openTierHub(t, url, "b", func(tier *pghub.Tier) hub.Tier { return tier })
	if !a.Sequencing() || b.Sequencing() {
		t.Fatalf("a sequences %v, b %v: want a only", a.Sequencing(), b.Sequencing())
	}
	if _, _, err := a.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	seed, _, err := a.Upsert(ctx, "c", "x", []byte(`{"id":"x","pk":"a","n":0}`), hub.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { _, err := b.Container("c"); return err })

	v1 := pushV("c", "x", replica.OpReplace, "n1-1", seed.Version, 1, `{"pk":"a","n":1}`)
	v2 := pushV("c", "x", replica.OpReplace, "n1-2", "n1-1", 2, `{"pk":"a","n":2}`)
	paused.Store(true)
	wait1, err := b.QueuePush(ctx, "n1", nil, []wire.Version{v1})
	if err != nil {
		t.Fatal(err)
	}
	pushHeld(t, a, "n1", 0, v2)
	pushHeld(t, a, "n1", 0, v2) // pushed again: v1 is still in the queue

	paused.Store(false)
	out1, _, err := wait1()
	if err != nil {
		t.Fatalf("push of v1 through b: %v", err)
	}
	if out1[0].Outcome != wire.OutcomeConfirmed || out1[0].ConflictID != 0 {
		t.Fatalf("outcome of v1=%+v, want confirmed without a conflict", out1[0])
	}
	if o := doPush(t, a, pushBatch{node: "n1", versions: []wire.Version{v2}})[0]; o.Outcome != wire.OutcomeConfirmed || o.ConflictID != 0 {
		t.Fatalf("outcome of v2=%+v, want confirmed without a conflict", o)
	}
	if cs := pushConflicts(t, a, "c"); len(cs) != 0 {
		t.Fatalf("conflicts=%+v, want none", cs)
	}
	changes, _, err := a.Changes(ctx, "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Version)
	}
	if want := []string{seed.Version, "n1-1", "n1-2"}; !slices.Equal(got, want) {
		t.Fatalf("log versions=%v, want %v", got, want)
	}
}

// TestHub_PushHeldWaitsWhileItsBaseIsQueued: the sequencer's view of
// TestTier_PushHeldWaitsForItsBaseInTheQueue, on either store. The edge's
// v1 waits in the tier's queue (another hub forwarded it) while v2,
// written over it, is pushed to the sequencer, held, and pushed again:
// held again, and decided over v1 once v1 is. A base whose queued push is
// gone (it never comes) holds its later version up no more: pushed again,
// that version is decided.
func TestHub_PushHeldWaitsWhileItsBaseIsQueued(t *testing.T) {
	ctx := context.Background()
	q := &queueTier{}
	q.pause(true)
	h := openQueueTierHub(t, q)
	seed, _, err := h.Upsert(ctx, "c", "x", []byte(`{"id":"x","pk":"a","n":0}`), hub.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := pushV("c", "x", replica.OpReplace, "n-1", seed.Version, 1, `{"pk":"a","n":1}`)
	v2 := pushV("c", "x", replica.OpReplace, "n-2", "n-1", 2, `{"pk":"a","n":2}`)
	q.addPush(1, "n", v1)
	pushHeld(t, h, "n", 0, v2)
	pushHeld(t, h, "n", 0, v2)
	// Another node's queued pushes, and the node's later ones, do not
	// hold it.
	q.addPush(2, "m", pushV("c", "z", replica.OpCreate, "m-1", "", 1, `{"pk":"a"}`))
	q.addPush(3, "n", pushV("c", "w", replica.OpCreate, "n-3", "", 3, `{"pk":"a"}`))

	q.pause(false)
	eventually(t, 10*time.Second, func() error {
		if !q.isFinished(1) {
			return errors.New("the queued push of v1 is not decided")
		}
		return nil
	})
	if o := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{v2}})[0]; o.Outcome != wire.OutcomeConfirmed || o.ConflictID != 0 {
		t.Fatalf("outcome of v2=%+v, want confirmed without a conflict", o)
	}
	checkPushState(t, h, pushState{"c", "x", "n-2", map[string]any{"n": 2.0}})
	if cs := pushConflicts(t, h, "c"); len(cs) != 0 {
		t.Fatalf("conflicts=%+v, want none", cs)
	}

	// w2 over w1, whose queued push is gone before the sequencer read it.
	q.pause(true)
	w1 := pushV("c", "y", replica.OpCreate, "n-4", "", 4, `{"pk":"a","n":4}`)
	w2 := pushV("c", "y", replica.OpReplace, "n-5", "n-4", 5, `{"pk":"a","n":5}`)
	q.addPush(4, "n", w1)
	pushHeld(t, h, "n", 0, w2)
	pushHeld(t, h, "n", 0, w2)
	q.remove(4)
	if o := doPush(t, h, pushBatch{node: "n", versions: []wire.Version{w2}})[0]; o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("outcome of w2 once its base's push is gone=%+v, want confirmed", o)
	}
	checkPushState(t, h, pushState{"c", "y", "n-5", map[string]any{"n": 5.0}})
}
