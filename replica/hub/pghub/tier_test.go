package pghub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// testTimeout is the lease timeout of the tests: short, so that takeovers
// are quick, and long enough for a loaded machine's heartbeats.
const testTimeout = time.Second

// tierHub is a hub of a tier in the test: its store, tier and hub.
type tierHub struct {
	st   *pghub.Store
	tier *pghub.Tier
	h    *hub.Hub
}

func openHub(t *testing.T, url, name string) *tierHub {
	t.Helper()
	return openHubWith(t, url, name, testTimeout)
}

// openHubWith is openHub with the lease timeout lease.
func openHubWith(t *testing.T, url, name string, lease time.Duration) *tierHub {
	t.Helper()
	st := pghub.New(pghub.Config{URL: url, MaxConns: 4})
	tier := pghub.NewTier(pghub.TierConfig{Store: st, Name: name, Address: "127.0.0.1:0", LeaseTimeout: lease, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: st, Name: name, Tier: tier})
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &tierHub{st: st, tier: tier, h: h}
}

// waitSequencer waits until want holds the lease and returns the takeover
// that gave it the lease.
func waitSequencer(t *testing.T, want *tierHub, within time.Duration) hub.Takeover {
	t.Helper()
	deadline := time.Now().Add(within)
	for !want.h.Sequencing() {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold the lease after %s", want.h.Name(), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ks, err := want.h.Takeovers(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 1 || ks[0].Holder != want.h.Name() {
		t.Fatalf("newest takeover %+v, want one by %s", ks, want.h.Name())
	}
	return ks[0]
}

func sequencerOf(t *testing.T, h *tierHub) string {
	t.Helper()
	hubs, err := h.h.Hubs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range hubs {
		if th.Sequencer {
			return th.Name
		}
	}
	return ""
}

func TestTier_TakeRenewExpire(t *testing.T) {
	url := pgtest.Database(t)
	a := openHub(t, url, "a")
	if !a.h.Sequencing() {
		t.Fatal("the first hub of a tier does not sequence after Open")
	}
	b := openHub(t, url, "b")
	if b.h.Sequencing() {
		t.Fatal("the second hub sequences while the first holds the lease")
	}
	first := waitSequencer(t, a, 0)
	if first.Epoch != 1 || first.Previous != "" || first.GapMs != 0 {
		t.Fatalf("first takeover %+v, want epoch 1 from nobody", first)
	}
	// Renewed: held across several lease timeouts.
	time.Sleep(3 * testTimeout)
	if !a.h.Sequencing() || b.h.Sequencing() {
		t.Fatalf("after 3 lease timeouts: a sequences %v, b %v; want a only", a.h.Sequencing(), b.h.Sequencing())
	}
	if got := sequencerOf(t, b); got != "a" {
		t.Fatalf("b lists sequencer %q, want a", got)
	}
	// Expired: a stalls, b takes over within the lease timeout plus a
	// renewal interval (and the poll of this test).
	stalled := time.Now()
	a.tier.Pause()
	k := waitSequencer(t, b, testTimeout+testTimeout/5+time.Second)
	t.Logf("takeover after a stall: %s by this test's clock, %d ms without a sequencer by the database's", time.Since(stalled).Round(time.Millisecond), k.GapMs)
	if k.Epoch != 2 || k.Previous != "a" {
		t.Fatalf("takeover %+v, want epoch 2 from a", k)
	}
	if max := (testTimeout + testTimeout/5 + 500*time.Millisecond).Milliseconds(); k.GapMs > max || k.GapMs < testTimeout.Milliseconds()/2 {
		t.Fatalf("gap %d ms, want about the lease timeout (at most %d)", k.GapMs, max)
	}
	if a.h.Sequencing() {
		t.Fatal("a stalled past its lease still believes it sequences")
	}
	if got := a.tier.TakeoverCount() + b.tier.TakeoverCount(); got != 2 {
		t.Fatalf("takeovers counted %d, want 2", got)
	}
}

func TestTier_Order(t *testing.T) {
	url := pgtest.Database(t)
	a := openHub(t, url, "a")
	b := openHub(t, url, "b")
	c := openHub(t, url, "c")
	hubs, err := c.h.Hubs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 3 || hubs[0].Name != "a" || hubs[1].Name != "b" || hubs[2].Name != "c" || !hubs[0].Sequencer {
		t.Fatalf("hubs %+v, want a (sequencer), b, c in join order", hubs)
	}
	for _, th := range hubs {
		if !th.Online {
			t.Fatalf("hub %s is not online", th.Name)
		}
	}
	a.tier.Pause()
	k := waitSequencer(t, b, 3*testTimeout)
	t.Logf("takeover by the next in order: %d ms", k.GapMs)
	if c.h.Sequencing() {
		t.Fatal("c sequences: the lease went past b, the next in order")
	}
	b.tier.Pause()
	k = waitSequencer(t, c, 3*testTimeout)
	t.Logf("takeover by the last: %d ms", k.GapMs)
	if k.Epoch != 3 || k.Previous != "b" {
		t.Fatalf("takeover %+v, want epoch 3 from b", k)
	}
}

func TestTier_Remove(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := openHub(t, url, "a")
	b := openHub(t, url, "b")
	c := openHub(t, url, "c")
	if err := a.h.RemoveHub(ctx, "nope"); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("RemoveHub(unknown)=%v, want ErrNotFound", err)
	}
	// Removing a follower leaves the lease where it is.
	if err := a.h.RemoveHub(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	hubs, err := a.h.Hubs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 2 || hubs[0].Name != "a" || hubs[1].Name != "c" {
		t.Fatalf("hubs after removing b: %+v, want a, c", hubs)
	}
	// Removing the sequencer passes the lease to the next live hub in
	// order (c: b is removed), at once, not after the lease timeout.
	removed := time.Now()
	if err := c.h.RemoveHub(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	k := waitSequencer(t, c, testTimeout)
	t.Logf("takeover after removing the sequencer: %s", time.Since(removed).Round(time.Millisecond))
	if k.Previous != "a" {
		t.Fatalf("takeover %+v, want one from a", k)
	}
	// The removed hubs keep running as followers: they never take the
	// lease back.
	time.Sleep(2 * testTimeout)
	if a.h.Sequencing() || b.h.Sequencing() || !c.h.Sequencing() {
		t.Fatalf("a %v, b %v, c %v sequence; want c only", a.h.Sequencing(), b.h.Sequencing(), c.h.Sequencing())
	}
}

// TestTier_Fencing: a hub that believes it holds the lease, after another
// hub took it, commits nothing: its transaction fails and is rolled back,
// and it steps down.
func TestTier_Fencing(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := openHub(t, url, "a")
	if _, _, err := a.h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.h.Upsert(ctx, "c", "before", []byte(`{"id":"before","pk":"p"}`), hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	a.tier.Pause() // its lease stays valid, by its own clock, for a lease timeout
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Another hub takes the lease (as a takeover does: the next epoch).
	if _, err := conn.Exec(ctx, `UPDATE lease SET holder = 'b', epoch = epoch + 1, expires_at = clock_timestamp() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if !a.h.Sequencing() {
		t.Fatal("a does not believe it sequences: the test must run within its lease")
	}
	_, _, err = a.h.Upsert(ctx, "c", "after", []byte(`{"id":"after","pk":"p"}`), hub.WriteOptions{})
	if !errors.Is(err, hub.ErrNotSequencer) {
		t.Fatalf("Upsert by a deposed sequencer: %v, want ErrNotSequencer", err)
	}
	var lsn, logged, items int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT lsn FROM heads), (SELECT count(*) FROM log), (SELECT count(*) FROM items WHERE id = 'after')`).
		Scan(&lsn, &logged, &items); err != nil {
		t.Fatal(err)
	}
	if lsn != 1 || logged != 1 || items != 0 {
		t.Fatalf("after the fenced write: head %d, %d log records, %d items 'after'; want 1, 1, 0", lsn, logged, items)
	}
	if a.h.Sequencing() {
		t.Fatal("a still sequences after a fenced commit")
	}
}

// TestTier_TakeoverPastAStalledTransaction: the sequencer stalls inside a
// transaction that locks the lease row; the server ends that transaction
// after a lease timeout, and the next hub takes over.
func TestTier_TakeoverPastAStalledTransaction(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := openHub(t, url, "a")
	b := openHub(t, url, "b")
	a.tier.Pause()
	tx, err := a.st.BeginLocked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	stalled := time.Now()
	k := waitSequencer(t, b, 3*testTimeout)
	t.Logf("takeover past a stalled transaction: %s, %d ms without a sequencer", time.Since(stalled).Round(time.Millisecond), k.GapMs)
	if k.Previous != "a" {
		t.Fatalf("takeover %+v, want one from a", k)
	}
}

// TestTier_TakeoverEndsTheStalledHoldersSessions: the sequencer stalls
// inside a transaction that locks the lease row just before its lease
// expires; the next hub ends that hub's sessions and takes over about a
// lease timeout after the stall began, not once the server's
// idle-in-transaction bound ends the transaction a lease timeout later.
func TestTier_TakeoverEndsTheStalledHoldersSessions(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := openHub(t, url, "a")
	b := openHub(t, url, "b")
	a.tier.Pause()
	paused := time.Now()
	// The lease's term is 7/10 of the timeout, renewed every 2/10: it
	// expires 5/10 to 7/10 of the timeout after the pause. The stall
	// begins 3/10 of the timeout before the expiry the lease row names, on
	// the server's clock (a fixed sleep left 0-2/10, too little for a slow
	// run, whose stall then came after the takeover).
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left float64
	if err := conn.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - clock_timestamp()) FROM lease WHERE id = 1`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Duration(left*float64(time.Second)) - testTimeout*3/10)
	tx, err := a.st.BeginLocked(ctx)
	if err != nil {
		t.Fatalf("the stall, %s after the pause: %v", time.Since(paused).Round(time.Millisecond), err)
	}
	defer tx.Rollback(ctx)
	k := waitSequencer(t, b, 3*testTimeout)
	took := time.Since(paused)
	t.Logf("takeover past a transaction stalled near the lease's end: %s after the stall, %d ms without a sequencer", took.Round(time.Millisecond), k.GapMs)
	if k.Previous != "a" {
		t.Fatalf("takeover %+v, want one from a", k)
	}
	if limit := testTimeout + testTimeout/2; took > limit {
		t.Fatalf("b took over %s after a stalled, want at most %s", took.Round(time.Millisecond), limit)
	}
	if _, err := tx.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("the stalled transaction still runs after the takeover")
	}
}

// TestTier_TakeoverWithinLeaseTimeout: the sequencer stops just after it
// renewed its lease, the worst instant, while a third hub runs its lease
// rounds too; the next hub in order holds the lease, and a write made at
// the third hub when the sequencer stopped is confirmed, within the lease
// timeout of the stop. Twice: the second time the next hub is the first
// one, started again after its stop. (A lease timeout of 2s: the margin
// for the takeover and the write is a tenth of it and what the term leaves
// of the renewal interval, 0.6s; 0.3s with the other tests' timeout, too
// little on a loaded machine.)
func TestTier_TakeoverWithinLeaseTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	url := pgtest.Database(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	renewedAt := func() time.Time {
		var at time.Time
		if err := conn.QueryRow(ctx, `SELECT renewed_at FROM lease WHERE id = 1`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	a, b, c := openHubWith(t, url, "a", timeout), openHubWith(t, url, "b", timeout), openHubWith(t, url, "c", timeout)
	if _, _, err := a.h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	stop := func(seq, next *tierHub, id string) {
		t.Helper()
		waitSequencer(t, seq, 3*timeout)
		eventually(t, 3*timeout, func() error { _, err := c.h.Container("c"); return err })
		before := renewedAt()
		for renewedAt().Equal(before) {
			time.Sleep(time.Millisecond)
		}
		seq.tier.Pause()
		stopped := time.Now()
		written := make(chan error, 1)
		go func() {
			_, _, err := c.h.Upsert(ctx, "c", id, []byte(`{"id":"`+id+`","pk":"p"}`), hub.WriteOptions{})
			written <- err
		}()
		k := waitSequencer(t, next, 2*timeout)
		named := time.Since(stopped)
		if err := <-written; err != nil {
			t.Fatalf("write at c while %s took over: %v", next.h.Name(), err)
		}
		confirmed := time.Since(stopped)
		t.Logf("%s stopped just after a renewal: %s took over after %s (%d ms without a sequencer), the write at c confirmed after %s",
			seq.h.Name(), next.h.Name(), named.Round(time.Millisecond), k.GapMs, confirmed.Round(time.Millisecond))
		if k.Previous != seq.h.Name() {
			t.Fatalf("takeover %+v, want one from %s", k, seq.h.Name())
		}
		if confirmed > timeout {
			t.Fatalf("the write at c was confirmed %s after the sequencer stopped, want at most the lease timeout %s",
				confirmed.Round(time.Millisecond), timeout)
		}
	}
	stop(a, b, "after-a")
	a = openHubWith(t, url, "a", timeout) // back, first in order: the next to take over
	stop(b, a, "after-b")
}

// eventually retries fn until it succeeds or within has passed.
func eventually(t *testing.T, within time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTier_TakeoverSparesSessionsBegunAfterTheExpiry: the next hub ends the
// database sessions of a holder whose lease expired only if they began
// before the expiry (a stalled holder's); those of a process of the same
// name started since (a hub removed and started again) run on.
func TestTier_TakeoverSparesSessionsBegunAfterTheExpiry(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := openHub(t, url, "a")
	b := openHub(t, url, "b")
	b.tier.Pause() // no lease rounds: nobody takes the lease over yet
	if err := a.h.RemoveHub(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	a.h.Close(ctx)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = pghub.SessionName("a")
	restarted, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer restarted.Close(ctx)
	c := openHub(t, url, "c") // the next live hub once b's heartbeat is old
	k := waitSequencer(t, c, 3*testTimeout)
	if k.Previous != "a" {
		t.Fatalf("takeover %+v, want one from a", k)
	}
	if _, err := restarted.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatalf("a session of a begun after its lease expired, after c took over: %v, want it running", err)
	}
}
