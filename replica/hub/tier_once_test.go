package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
)

// batchedTier is a tier whose sequencer takes at most n queued decisions
// at a time.
type batchedTier struct {
	*pghub.Tier
	n int
}

func (b batchedTier) Pending(ctx context.Context, skip []int64, limit int) ([]hub.Forwarded, error) {
	return b.Tier.Pending(ctx, skip, min(limit, b.n))
}

// onceHub is a hub of TestTier_ForwardedIncrementsApplyOnce, which the
// test closes and opens again.
type onceHub struct {
	name string
	h    *hub.Hub
}

// TestTier_ForwardedIncrementsApplyOnce: edges' pushes of counter
// increments (every one a conflict, decided by the counter resolver) go
// through the hubs that do not sequence, in small pushes, while the
// sequencer changes again and again: its database sessions are ended in
// the middle of whatever it does and its lease expires, or it is removed
// from the tier and started again. A push that fails is pushed again, as
// an edge does after a dropped connection. At the end the counter holds
// each increment exactly once, every push has its outcome, and the log has
// no gap. With the sequencer taking 1, 4 and 16 queued decisions at a
// time (under the race detector, which slows the resolver's compilation
// tenfold, 16 only).
func TestTier_ForwardedIncrementsApplyOnce(t *testing.T) {
	batches := []int{1, 4, 16}
	if raceEnabled {
		batches = []int{16}
	}
	for _, batch := range batches {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			forwardedIncrementsApplyOnce(t, pgtest.Database(t), batch, false)
		})
	}
}

// TestTier_ForwardedChainedIncrementsApplyOnce is
// TestTier_ForwardedIncrementsApplyOnce with each edge's increments written
// over one another, as an edge writes them while none is confirmed: each
// version's base is the edge's previous version. A push that fails, or is
// decided on another route, must not let a later push of the same edge be
// decided before it: the later increment would be decided without its
// base, counting the edge's earlier increments again.
func TestTier_ForwardedChainedIncrementsApplyOnce(t *testing.T) {
	batches := []int{1, 16}
	if raceEnabled {
		batches = []int{16}
	}
	for _, batch := range batches {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			forwardedIncrementsApplyOnce(t, pgtest.Database(t), batch, true)
		})
	}
}

// forwardedIncrementsApplyOnce runs the increments test; chained, each
// edge writes its increments over its previous one.
func forwardedIncrementsApplyOnce(t *testing.T, url string, batch int, chained bool) {
	ctx := context.Background() // the setup (compiling the resolver) has no bound
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: t.TempDir(), Limits: wasmhost.Limits{CompileTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close(context.Background()) })
	open := func(name string) *hub.Hub {
		st := pghub.New(pghub.Config{URL: url, MaxConns: 4})
		tier := pghub.NewTier(pghub.TierConfig{Store: st, Name: name, LeaseTimeout: time.Second, Poll: 200 * time.Millisecond})
		reg := wasmhost.NewRegistry(wh)
		h := hub.New(hub.Config{Store: st, Name: name, Tier: batchedTier{tier, batch}, Resolvers: reg})
		if err := h.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close(context.Background()); reg.Close(context.Background()) })
		return h
	}
	var mu sync.Mutex // guards hubs
	hubs := []*onceHub{{name: "a"}, {name: "b"}, {name: "c"}}
	for _, oh := range hubs {
		oh.h = open(oh.name)
	}
	a := hubs[0].h
	if _, _, err := a.PutResolver(ctx, "counter", readWasm(t, "counter.wasm")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutContainer(ctx, replica.Container{Name: "counters", PartitionKey: "/pk",
		ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "counter"}}); err != nil {
		t.Fatal(err)
	}
	seed, _, err := a.Upsert(ctx, "counters", "k", []byte(`{"id":"k","pk":"p","count":0}`), hub.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, oh := range hubs {
		eventually(t, 10*time.Second, func() error {
			if len(oh.h.Resolvers()) == 0 {
				return fmt.Errorf("hub %s has no resolver yet", oh.name)
			}
			_, err := oh.h.Container("counters")
			return err
		})
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// Each edge writes increments of 1 over the seed (count 0): every one
	// a conflict with the current version, merged as current + 1; chained,
	// each over the edge's previous increment (count i over count i-1),
	// merged as current + 1 too, or confirmed when the edge's previous one
	// is the current version. It pushes
	// them as a session does: up to wire.MaxInFlightPush pushes queued,
	// their outcomes awaited in order; at the first failure the session
	// ends, and the edge pushes again from the first version without an
	// outcome, to the next hub.
	const edges, perEdge = 4, 50
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var attempts, failed, changed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, edges)
	for e := range edges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("e%016x", e+1)
			versions := make([]wire.Version, perEdge)
			for i := range versions {
				base, count := seed.Version, 1
				if chained && i > 0 {
					base, count = versions[i-1].Version, i+1
				}
				versions[i] = wire.Version{Container: "counters", ID: "k", Op: replica.OpReplace, Version: fmt.Sprintf("%s-%d", node, i+1),
					Base: base, TS: time.Now().Unix(), Body: fmt.Appendf(nil, `{"id":"k","pk":"p","count":%d}`, count)}
			}
			next := 0 // the first version without an outcome
			for try := 0; next < perEdge; try++ {
				// The edges' progress follows the sequencer's changes (a
				// quarter of the versions per change), so that the run
				// spans at least three of them however fast the tier is.
				for next >= int(changed.Load()+1)*perEdge/4 && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				if ctx.Err() != nil {
					errs <- fmt.Errorf("edge %s: %d of %d versions have outcomes after %d sessions", node, next, perEdge, try)
					return
				}
				mu.Lock()
				h := hubs[(e+try)%len(hubs)].h
				mu.Unlock()
				attempts.Add(1)
				session, end := context.WithTimeout(ctx, 5*time.Second)
				var waits []func() ([]wire.Outcome, int64, error)
				for i := next; len(waits) < wire.MaxInFlightPush && i < perEdge; {
					n := min(1+(i+e)%3, perEdge-i)
					wait, err := h.QueuePush(session, node, nil, versions[i:i+n])
					if err != nil {
						break
					}
					waits = append(waits, wait)
					i += n
				}
				for _, wait := range waits {
					outs, _, err := wait()
					if err != nil {
						failed.Add(1)
						break
					}
					for _, o := range outs {
						if o.Outcome != replica.OutcomeMerged && o.Outcome != replica.OutcomeConfirmed {
							errs <- fmt.Errorf("edge %s: version %s got %+v, want merged or confirmed", node, o.Version, o)
							end()
							return
						}
					}
					next += len(outs)
				}
				end()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	// The sequencer changes until the edges are done.
	changes := 0
	rng := rand.New(rand.NewPCG(uint64(batch), 7))
	for running := true; running; {
		select {
		case <-done:
			running = false
			continue
		case <-time.After(time.Duration(300+rng.IntN(500)) * time.Millisecond):
		}
		var holder string
		if err := conn.QueryRow(ctx, `SELECT holder FROM lease WHERE id = 1`).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		if changes%4 == 3 {
			// Removed from the tier and started again: it joins last.
			mu.Lock()
			for _, oh := range hubs {
				if oh.name == holder && oh.h.Sequencing() {
					if err := oh.h.RemoveHub(ctx, holder); err != nil {
						t.Fatal(err)
					}
					oh.h.Close(ctx)
					oh.h = open(holder)
				}
			}
			mu.Unlock()
		} else if _, err := conn.Exec(ctx, `WITH e AS (UPDATE lease SET expires_at = clock_timestamp() WHERE id = 1)
			SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, tierSessionName(holder)); err != nil {
			t.Fatal(err)
		}
		changes++
		changed.Store(int64(changes))
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	var epoch int64
	if err := conn.QueryRow(ctx, `SELECT epoch FROM lease WHERE id = 1`).Scan(&epoch); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d versions of %d edges in %d sessions (%d failed), %d changes of the sequencer, lease epoch %d",
		edges*perEdge, edges, attempts.Load(), failed.Load(), changes, epoch)
	if changes < 3 || epoch < 3 {
		t.Fatalf("%d changes of the sequencer, epoch %d: want at least 3 of each (the test ran too quickly to show anything)", changes, epoch)
	}
	want := edges * perEdge
	var body []byte
	var head, logged, maxLSN int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT lsn FROM heads WHERE id = 1), (SELECT count(*) FROM log), (SELECT coalesce(max(lsn), 0) FROM log)`).
		Scan(&head, &logged, &maxLSN); err != nil {
		t.Fatal(err)
	}
	if head != logged || head != maxLSN {
		t.Fatalf("the log's head %d, %d records, highest LSN %d: want the same, without gaps", head, logged, maxLSN)
	}
	mu.Lock()
	last := hubs[len(hubs)-1].h
	mu.Unlock()
	eventually(t, 10*time.Second, func() error {
		it, err := last.Get(ctx, "counters", "k")
		if err != nil {
			return err
		}
		body = it.Body
		if it.LSN != head {
			return fmt.Errorf("k at LSN %d, the head is %d", it.LSN, head)
		}
		return nil
	})
	var doc struct{ Count int }
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Count != want {
		t.Fatalf("count %d after %d increments, want %d: each increment applied exactly once", doc.Count, want, want)
	}
	var stored int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM versions WHERE id = 'k' AND origin LIKE 'e%' AND outcome IN ('merged', 'confirmed')`).
		Scan(&stored); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if stored != int64(want) {
		t.Fatalf("%d pushed versions stored with their outcome, want %d", stored, want)
	}
}

// tierSessionName is the application_name of a tier hub's database
// sessions, as the operations guide documents it.
func tierSessionName(hub string) string {
	sum := sha256.Sum256([]byte(hub))
	return "cloudhub " + hex.EncodeToString(sum[:8])
}

// TestTier_PushesOfAnEndedSessionStayInOrder: an edge's session on a hub
// that does not sequence ends while two of its pushes wait for the
// sequencer, the second over the version the first pushes (two increments
// of a counter). The session stops waiting for the first (and never waits
// for the second); the edge pushes both again. Both increments are
// applied once, in the edge's order: the second is never decided before
// the first, over a base the hub does not have (counting the first twice).
func TestTier_PushesOfAnEndedSessionStayInOrder(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background() // the setup (compiling the resolver) has no bound
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: t.TempDir(), Limits: wasmhost.Limits{CompileTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close(context.Background()) })
	a := newTierClusterWith(t, url, "a", wasmhost.NewRegistry(wh)).hub
	b := newTierClusterWith(t, url, "b", wasmhost.NewRegistry(wh)).hub
	if _, _, err := a.PutResolver(ctx, "counter", readWasm(t, "counter.wasm")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PutContainer(ctx, replica.Container{Name: "counters", PartitionKey: "/pk",
		ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "counter"}}); err != nil {
		t.Fatal(err)
	}
	seed, _, err := a.Upsert(ctx, "counters", "k", []byte(`{"id":"k","pk":"p","count":0}`), hub.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Another write makes the edge's increments conflicts.
	if _, _, err := a.Upsert(ctx, "counters", "k", []byte(`{"id":"k","pk":"p","count":10}`), hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if len(b.Resolvers()) == 0 {
			return errors.New("b has no resolver yet")
		}
		_, err := b.Container("counters")
		return err
	})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// No hub sequences for a while: the lease is another's.
	if _, err := conn.Exec(ctx, `UPDATE lease SET holder = 'elsewhere', epoch = epoch + 1, expires_at = clock_timestamp() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if a.Sequencing() || b.Sequencing() {
			return errors.New("a hub still sequences")
		}
		return nil
	})
	const node = "e00000000000000e1"
	v1 := wire.Version{Container: "counters", ID: "k", Op: replica.OpReplace, Version: node + "-1", Base: seed.Version, TS: 1,
		Body: []byte(`{"id":"k","pk":"p","count":1}`)}
	v2 := wire.Version{Container: "counters", ID: "k", Op: replica.OpReplace, Version: node + "-2", Base: v1.Version, TS: 2,
		Body: []byte(`{"id":"k","pk":"p","count":2}`)}
	session, end := context.WithCancel(ctx)
	wait1, err := b.QueuePush(session, node, nil, []wire.Version{v1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.QueuePush(session, node, nil, []wire.Version{v2}); err != nil {
		t.Fatal(err)
	}
	// The session ends while it waits for the first push, as a session
	// does: it stops waiting, and does not wait for the second.
	time.AfterFunc(200*time.Millisecond, end)
	if _, _, err := wait1(); err == nil {
		t.Fatal("the first push has outcomes with no hub sequencing")
	}
	// A hub sequences again; the edge, connected again, pushes both.
	if _, err := conn.Exec(ctx, `UPDATE lease SET expires_at = clock_timestamp()`); err != nil {
		t.Fatal(err)
	}
	var outs []wire.Outcome
	eventually(t, 20*time.Second, func() error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		outs, _, err = b.Push(pctx, node, nil, []wire.Version{v1, v2})
		return err
	})
	for _, o := range outs {
		if o.Outcome != replica.OutcomeMerged {
			t.Fatalf("outcome %+v, want merged", o)
		}
	}
	eventually(t, 10*time.Second, func() error {
		it, err := b.Get(ctx, "counters", "k")
		if err != nil {
			return err
		}
		var doc struct{ Count int }
		if err := json.Unmarshal(it.Body, &doc); err != nil {
			return err
		}
		if it.LSN != b.Head() || b.Head() != a.Head() {
			return fmt.Errorf("k at LSN %d, heads %d and %d", it.LSN, b.Head(), a.Head())
		}
		if doc.Count != 12 {
			t.Fatalf("count %d after 10 and two increments, want 12", doc.Count)
		}
		return nil
	})
}
