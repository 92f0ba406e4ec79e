package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
)

// handoffHub is a hub of a tier whose hubs hand their edges' pushes to the
// sequencer's hub, served on loopback (sync and the hand-off), the address
// its tier lists for it.
type handoffHub struct {
	*cluster
	tier *pghub.Tier
}

func newHandoffHub(t *testing.T, url, name string, lease time.Duration) *handoffHub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := pghub.New(pghub.Config{URL: url, MaxConns: 4})
	tier := pghub.NewTier(pghub.TierConfig{Store: st, Name: name, LeaseTimeout: lease, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: st, Name: name, Tier: tier, Handoff: true})
	mux := http.NewServeMux()
	mux.HandleFunc(hub.HandoffPath, h.ServeTierPush)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.ServeSync(ctx, w, r) })
	srv := httptest.NewServer(mux)
	tier.SetAddress(srv.Listener.Addr().String())
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		h.Close(context.Background())
	})
	return &handoffHub{cluster: &cluster{t: t, hub: h, srv: srv, ctx: ctx}, tier: tier}
}

// queueUsed reports whether any decision ever went into the tier's queue
// table (its sequence handed out a number).
func queueUsed(t *testing.T, url string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var called bool
	if err := conn.QueryRow(ctx, `SELECT is_called FROM forwarded_seq_seq`).Scan(&called); err != nil {
		t.Fatal(err)
	}
	return called
}

func putHandoffContainer(t *testing.T, seq *handoffHub, others ...*handoffHub) {
	t.Helper()
	if _, _, err := seq.hub.PutContainer(context.Background(), replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	for _, o := range others {
		eventually(t, 5*time.Second, func() error { _, err := o.hub.Container("c"); return err })
	}
}

// TestTier_HandoffPushThroughFollower: an edge of a hub that does not
// sequence writes; its pushes are handed to the sequencer's hub directly,
// none through the tier's queue table, and every outcome reaches the edge;
// the confirmed versions stream to an edge of the sequencer.
func TestTier_HandoffPushThroughFollower(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newHandoffHub(t, url, "a", time.Second)
	b := newHandoffHub(t, url, "b", time.Second)
	if !a.hub.Sequencing() || b.hub.Sequencing() {
		t.Fatalf("a sequences %v, b %v: want a only", a.hub.Sequencing(), b.hub.Sequencing())
	}
	putHandoffContainer(t, a, b)
	ea, eb := a.edge("ea", nil), b.edge("eb", nil)
	eventually(t, 5*time.Second, func() error { _, err := eb.r.Container("c"); return err })
	var last replica.Item
	for i := range 40 {
		it, err := eb.r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"d%d","pk":"p%d"}`, i, i%3))
		if err != nil {
			t.Fatal(err)
		}
		last = it
	}
	upd, _, err := eb.r.Upsert(ctx, "c", last.ID, []byte(`{"id":"`+last.ID+`","pk":"`+last.PK+`","n":2}`), edge.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error { return errors.Join(ea.synced(), eb.synced()) })
	for _, e := range []*testEdge{ea, eb} {
		got, err := e.r.Get(ctx, "c", last.ID, edge.ReadOptions{Consistency: edge.ConsistencyConfirmed})
		if err != nil || got.LSN == 0 || got.Version != upd.Version {
			t.Fatalf("edge %s has %+v, %v; want version %s confirmed", e.name, got, err, upd.Version)
		}
	}
	if got := a.hub.Head(); got != 41 {
		t.Fatalf("head %d, want 41 (one LSN per version)", got)
	}
	pushes, fallbacks, _ := b.hub.HandoffCounts()
	_, _, received := a.hub.HandoffCounts()
	if pushes == 0 || fallbacks != 0 || received != pushes {
		t.Fatalf("b handed off %d pushes, queued %d after a failed hand-off; a received %d: want some, none, as many", pushes, fallbacks, received)
	}
	if queueUsed(t, url) {
		t.Fatal("a push went through the tier's queue table")
	}
}

// TestTier_HandoffFallsBackToTheQueue: when the sequencer's hub does not
// answer at the address the tier lists for it, a follower queues its push
// in the tier's queue, and the push is decided all the same.
func TestTier_HandoffFallsBackToTheQueue(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newHandoffHub(t, url, "a", time.Second)
	b := newHandoffHub(t, url, "b", time.Second)
	putHandoffContainer(t, a, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	a.tier.SetAddress(closed) // nothing listens there: connection refused
	eventually(t, 5*time.Second, func() error {
		if _, addr, err := b.tier.Sequencer(ctx, true); err != nil || addr != closed {
			return fmt.Errorf("the tier lists the sequencer at %q, %v; want %q", addr, err, closed)
		}
		return nil
	})
	out, _, err := b.hub.Push(ctx, "n1", nil, []wire.Version{pushV("c", "x", replica.OpCreate, "n1-1", "", 1, `{"pk":"a"}`)})
	if err != nil || len(out) != 1 || out[0].Outcome != wire.OutcomeConfirmed {
		t.Fatalf("push through b=%+v, %v; want confirmed", out, err)
	}
	if pushes, fallbacks, _ := b.hub.HandoffCounts(); pushes != 0 || fallbacks != 1 {
		t.Fatalf("b handed off %d pushes, queued %d after a failed hand-off; want 0 and 1", pushes, fallbacks)
	}
	if !queueUsed(t, url) {
		t.Fatal("the push did not go through the tier's queue table")
	}
}

// TestTier_HandoffRefused: the hand-off endpoint takes pushes only from a
// hub of its tier (the tier's secret), only on the sequencer the request
// names, within a push frame's bound, and well formed.
func TestTier_HandoffRefused(t *testing.T) {
	url := pgtest.Database(t)
	// A long lease: a renewal late by a second on a loaded machine must not
	// pass the lease to b between the cases (a 409 where a 400 is meant).
	a := newHandoffHub(t, url, "a", 30*time.Second)
	b := newHandoffHub(t, url, "b", 30*time.Second)
	secret := string(a.tier.Secret())
	if len(secret) != 64 || secret != string(b.tier.Secret()) {
		t.Fatalf("secrets %q and %q: want one of 64 hex digits, the same on every hub", secret, b.tier.Secret())
	}
	body, err := hub.EncodeHandoffPush("n1", nil, []wire.Version{pushV("c", "x", replica.OpCreate, "n1-1", "", 1, `{"pk":"a"}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		to     *handoffHub
		auth   string
		seq    string
		body   []byte
		status int
	}{
		{name: "no secret", to: a, seq: "a", body: body, status: http.StatusUnauthorized},
		{name: "wrong secret", to: a, auth: "Bearer " + secret[:63] + "x", seq: "a", body: body, status: http.StatusUnauthorized},
		{name: "admin-style token", to: a, auth: secret, seq: "a", body: body, status: http.StatusUnauthorized},
		{name: "another sequencer named", to: a, auth: "Bearer " + secret, seq: "b", body: body, status: http.StatusConflict},
		{name: "hub that does not sequence", to: b, auth: "Bearer " + secret, seq: "b", body: body, status: http.StatusConflict},
		{name: "too large", to: a, auth: "Bearer " + secret, seq: "a", body: make([]byte, wire.MaxFrameBytes+1), status: http.StatusRequestEntityTooLarge},
		{name: "not a push", to: a, auth: "Bearer " + secret, seq: "a", body: []byte("\x07garbage"), status: http.StatusBadRequest},
		{name: "cut short", to: a, auth: "Bearer " + secret, seq: "a", body: body[:len(body)/2], status: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.to.srv.URL+hub.HandoffPath, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Edgesync-Sequencer", tc.seq)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
	if _, _, received := a.hub.HandoffCounts(); received != 0 {
		t.Fatalf("a received %d pushes, want none", received)
	}
	// A hub alone on its store has no such endpoint.
	alone := newCluster(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, hub.HandoffPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	alone.hub.ServeTierPush(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("SQLite hub: status %d, want 404", rec.Code)
	}
}

// TestTier_HandoffStalledSequencerDecidedOnce: the sequencer's hub takes a
// handed-off push and stalls before it queues it. The follower stops
// waiting after twice the lease timeout and queues the push in the tier's
// queue, which the sequencer decides; the stalled hand-off, let go, is
// decided again: each version gets the outcome it got the first time, and
// is in the log once.
func TestTier_HandoffStalledSequencerDecidedOnce(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newHandoffHub(t, url, "a", time.Second)
	b := newHandoffHub(t, url, "b", time.Second)
	putHandoffContainer(t, a, b)
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(let) // before the hubs close: a's handler waits for it
	var once sync.Once
	a.hub.OnHandoffReceived(func() {
		stall := false
		once.Do(func() { stall = true })
		if stall {
			<-release
		}
	})
	versions := []wire.Version{
		pushV("c", "x", replica.OpCreate, "n1-1", "", 1, `{"pk":"a"}`),
		pushV("c", "y", replica.OpCreate, "n1-2", "", 2, `{"pk":"a"}`),
	}
	start := time.Now()
	out, _, err := b.hub.Push(ctx, "n1", nil, versions)
	if err != nil || len(out) != 2 || out[0].Outcome != wire.OutcomeConfirmed || out[1].Outcome != wire.OutcomeConfirmed {
		t.Fatalf("push through b=%+v, %v; want both confirmed", out, err)
	}
	t.Logf("decided through the queue after %s", time.Since(start).Round(time.Millisecond))
	if pushes, fallbacks, _ := b.hub.HandoffCounts(); pushes != 0 || fallbacks != 1 {
		t.Fatalf("b handed off %d pushes, queued %d after a failed hand-off; want 0 and 1", pushes, fallbacks)
	}
	let()
	eventually(t, 10*time.Second, func() error {
		if _, _, received := a.hub.HandoffCounts(); received != 1 {
			return fmt.Errorf("a received %d handed-off pushes, want 1", received)
		}
		return nil
	})
	// The same push made again, through b (handed off now) and at a.
	again, _, err := b.hub.Push(ctx, "n1", nil, versions)
	if err != nil || !slices.Equal(again, out) {
		t.Fatalf("push again through b=%+v, %v; want %+v", again, err, out)
	}
	if again := doPush(t, a.hub, pushBatch{node: "n1", versions: versions}); !slices.Equal(again, out) {
		t.Fatalf("push again at a=%+v; want %+v", again, out)
	}
	changes, _, err := a.hub.Changes(ctx, "c", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Version)
	}
	if want := []string{"n1-1", "n1-2"}; !slices.Equal(got, want) {
		t.Fatalf("log versions=%v, want %v", got, want)
	}
}

// TestTier_HandoffHeldWaitsForItsBase: the held-version rule over the
// hand-off. An edge pushed v1 (over the hub's version of x) through hub b,
// which handed it to the sequencer a, where it is received and not
// decided yet. The edge moved to a and pushed v2, written over v1: held.
// Pushed again while v1 is still on its way, v2 is held again; once a
// decides v1, v2 pushed again is decided over it, without a conflict.
func TestTier_HandoffHeldWaitsForItsBase(t *testing.T) {
	url := pgtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A lease timeout long enough that b waits for the hand-off through
	// the whole test instead of queueing v1 in the tier's queue.
	a := newHandoffHub(t, url, "a", 10*time.Second)
	b := newHandoffHub(t, url, "b", 10*time.Second)
	putHandoffContainer(t, a, b)
	seed, _, err := a.hub.Upsert(ctx, "c", "x", []byte(`{"id":"x","pk":"a","n":0}`), hub.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	received, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(let) // before the hubs close: a's handler waits for it
	a.hub.OnHandoffReceived(func() {
		close(received)
		<-release
	})
	v1 := pushV("c", "x", replica.OpReplace, "n1-1", seed.Version, 1, `{"pk":"a","n":1}`)
	v2 := pushV("c", "x", replica.OpReplace, "n1-2", "n1-1", 2, `{"pk":"a","n":2}`)
	type result struct {
		out []wire.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := b.hub.Push(ctx, "n1", nil, []wire.Version{v1})
		done <- result{out, err}
	}()
	select {
	case <-received:
	case <-ctx.Done():
		t.Fatal("a received no hand-off")
	}
	pushHeld(t, a.hub, "n1", 0, v2)
	pushHeld(t, a.hub, "n1", 0, v2) // pushed again: v1 is still on its way
	let()
	r := <-done
	if r.err != nil || len(r.out) != 1 || r.out[0].Outcome != wire.OutcomeConfirmed || r.out[0].ConflictID != 0 {
		t.Fatalf("push of v1 through b=%+v, %v; want confirmed without a conflict", r.out, r.err)
	}
	if o := doPush(t, a.hub, pushBatch{node: "n1", versions: []wire.Version{v2}})[0]; o.Outcome != wire.OutcomeConfirmed || o.ConflictID != 0 {
		t.Fatalf("outcome of v2=%+v, want confirmed without a conflict", o)
	}
	if cs := pushConflicts(t, a.hub, "c"); len(cs) != 0 {
		t.Fatalf("conflicts=%+v, want none", cs)
	}
	if pushes, fallbacks, _ := b.hub.HandoffCounts(); pushes != 1 || fallbacks != 0 {
		t.Fatalf("b handed off %d pushes, queued %d after a failed hand-off; want 1 and 0", pushes, fallbacks)
	}
	if queueUsed(t, url) {
		t.Fatal("v1 went through the tier's queue table")
	}
}
