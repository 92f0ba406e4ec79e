// Package storetest is the conformance suite of hub.Store: every backend
// runs RunConformance from its own tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// RunConformance runs the suite. open returns a new store over empty
// storage, not yet opened; the suite opens it and closes it at the end of
// the test.
func RunConformance(t *testing.T, open func(t *testing.T) hub.Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, s *store)
	}{
		{"HubID", testHubID},
		{"Containers", testContainers},
		{"LSNsWithoutGaps", testLSNsWithoutGaps},
		{"TryGivesBackNumbers", testTryGivesBackNumbers},
		{"IdempotentVersions", testIdempotentVersions},
		{"Prefetch", testPrefetch},
		{"PushOrder", testPushOrder},
		{"Heads", testHeads},
		{"LogPaging", testLogPaging},
		{"Conflicts", testConflicts},
		{"Edges", testEdges},
		{"Sessions", testSessions},
		{"Resolvers", testResolvers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, openStore(t, open))
		})
	}
}

// store is a store under test with the heads its commits reported.
type store struct {
	hub.Store
	mu        sync.Mutex
	committed hub.Heads
}

func openStore(t *testing.T, open func(t *testing.T) hub.Store) *store {
	t.Helper()
	ctx := context.Background()
	s := &store{Store: open(t)}
	if err := s.Open(ctx, func(hd hub.Heads) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if hd.LSN < s.committed.LSN || hd.Cseq < s.committed.Cseq {
			t.Errorf("commit reported heads %+v after %+v: heads went back", hd, s.committed)
		}
		s.committed = hd
	}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func (s *store) reported() hub.Heads {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed
}

// do runs fn in a write transaction and waits for it.
func do(s hub.Store, fn func(ctx context.Context, tx hub.Tx) error) error {
	wait, err := s.Queue(context.Background(), fn, nil)
	if err != nil {
		return err
	}
	return wait()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// doc is the body of document id with partition key pk.
func doc(id, pk, v string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"pk":%q,"v":%q}`, id, pk, v))
}

// confirm stores a version of (container, id) and confirms it at the next
// LSN, as the sequencer does.
func confirm(ctx context.Context, tx hub.Tx, container, id, pk, version, base, origin string, deleted bool) (int64, error) {
	lsn, err := tx.NextLSN(ctx)
	if err != nil {
		return 0, err
	}
	op, body := replica.OpReplace, doc(id, pk, version)
	if base == "" {
		op = replica.OpCreate
	}
	if deleted {
		op, body = replica.OpDelete, nil
	}
	if err := tx.InsertVersion(ctx, hub.VersionRecord{Version: version, Container: container, ID: id, PK: pk, Op: op, Base: base, Origin: origin,
		TS: lsn, Body: body, Outcome: replica.OutcomeConfirmed, LSN: lsn}); err != nil {
		return 0, err
	}
	e := hub.LogRecord{LSN: lsn, Container: container, ID: id, PK: pk, Op: op, Version: version, Base: base, Origin: origin, TS: lsn, CRTS: 1000 + lsn,
		Policy: replica.ModeLWW, Deleted: deleted}
	if err := tx.AppendLog(ctx, e); err != nil {
		return 0, err
	}
	return lsn, tx.SetItem(ctx, e, base != "")
}

func testHubID(t *testing.T, s *store) {
	ctx := context.Background()
	id, err := s.HubID(ctx)
	must(t, err)
	if !strings.HasPrefix(id, wire.HubNodePrefix) || len(id) < 2 {
		t.Fatalf("HubID()=%q, want a hub node id", id)
	}
	again, err := s.HubID(ctx)
	if err != nil || again != id {
		t.Fatalf("HubID() again = %q, %v; want %q", again, err, id)
	}
	hd, err := s.Heads(ctx)
	if err != nil || hd != (hub.Heads{}) {
		t.Fatalf("Heads() of an empty store = %+v, %v; want zero", hd, err)
	}
}

func testContainers(t *testing.T, s *store) {
	ctx := context.Background()
	policy := `{"mode":"lww"}`
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if _, found, err := tx.ContainerPK(ctx, "c"); err != nil || found {
			return fmt.Errorf("tx.ContainerPK of a new container: found %v, %v", found, err)
		}
		return tx.PutContainer(ctx, "c", "/pk", policy, "", 1)
	}))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		pk, found, err := tx.ContainerPK(ctx, "c")
		if err != nil || !found || pk != "/pk" {
			return fmt.Errorf("tx.ContainerPK = %q, %v, %v; want /pk", pk, found, err)
		}
		return tx.PutContainer(ctx, "c", "/pk", `{"mode":"merge"}`, `{"paths":["/price","/owner/name"]}`, 2)
	}))
	cs, err := s.Containers(ctx)
	must(t, err)
	if len(cs) != 1 || cs[0].Name != "c" || cs[0].PartitionKey != "/pk" || cs[0].ConflictPolicy.Mode != replica.ModeMerge {
		t.Fatalf("Containers()=%+v, want c on /pk with the merge policy", cs)
	}
	if ip := cs[0].IndexingPolicy; ip == nil || !slices.Equal(ip.Paths, []string{"/price", "/owner/name"}) {
		t.Fatalf("Containers()[0].IndexingPolicy=%+v, want paths /price, /owner/name", ip)
	}
	// A definition stored again without an indexing policy has none.
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		return tx.PutContainer(ctx, "c", "/pk", `{"mode":"merge"}`, "", 3)
	}))
	if cs, err = s.Containers(ctx); err != nil || len(cs) != 1 || cs[0].IndexingPolicy != nil {
		t.Fatalf("Containers() after the policy was dropped = %+v, %v; want c without an indexing policy", cs, err)
	}
}

// testLSNsWithoutGaps: writers submit concurrently; some of their jobs fail
// after writing (a version id stored before) and some before. The jobs that
// commit hold LSNs 1..n without a gap or a duplicate, whatever failed beside
// them, and the heads say n.
func testLSNsWithoutGaps(t *testing.T, s *store) {
	ctx := context.Background()
	const writers, jobs = 8, 40
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		_, err := confirm(ctx, tx, "c", "taken", "p", "n0-1", "", "n0", false)
		return err
	}))
	var mu sync.Mutex
	got := map[int64]string{1: "n0-1"}
	var wg sync.WaitGroup
	errc := make(chan error, writers*jobs)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var waits []func() error
			var versions []string
			var lsns []*int64
			for j := range jobs {
				version := fmt.Sprintf("n%d-%d", w+1, j+1)
				id := fmt.Sprintf("w%d-%d", w, j)
				lsn := new(int64)
				fail := j%5 == 3 // after writing
				refuse := j%7 == 5
				wait, err := s.Queue(ctx, func(ctx context.Context, tx hub.Tx) error {
					if refuse {
						return errRefused
					}
					n, err := confirm(ctx, tx, "c", id, "p", version, "", "n", false)
					if err != nil {
						return err
					}
					*lsn = n
					if fail {
						return tx.InsertVersion(ctx, hub.VersionRecord{Version: "n0-1", Container: "c", ID: "taken", PK: "p", Op: replica.OpCreate,
							Origin: "n0", Outcome: replica.OutcomeConfirmed, LSN: n})
					}
					return nil
				}, nil)
				if err != nil {
					errc <- err
					return
				}
				waits = append(waits, wait)
				if fail || refuse {
					versions = append(versions, "") // must fail
				} else {
					versions = append(versions, version)
				}
				lsns = append(lsns, lsn)
			}
			for i, wait := range waits {
				err := wait()
				switch {
				case versions[i] == "" && err == nil:
					errc <- fmt.Errorf("a failing job committed")
				case versions[i] != "" && err != nil:
					errc <- fmt.Errorf("job %s failed: %v", versions[i], err)
				case err == nil:
					mu.Lock()
					if prev, dup := got[*lsns[i]]; dup {
						errc <- fmt.Errorf("lsn %d reported for %s and %s", *lsns[i], prev, versions[i])
					}
					got[*lsns[i]] = versions[i]
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	n := int64(len(got))
	for lsn := int64(1); lsn <= n; lsn++ {
		if _, ok := got[lsn]; !ok {
			t.Fatalf("LSN %d missing of 1..%d", lsn, n)
		}
	}
	hd, err := s.Heads(ctx)
	if err != nil || hd.LSN != n {
		t.Fatalf("Heads()=%+v, %v; want LSN %d", hd, err, n)
	}
	if r := s.reported(); r.LSN != n {
		t.Fatalf("commits reported LSN %d, want %d", r.LSN, n)
	}
	var log []wire.Change
	for since := int64(0); ; {
		page, err := s.Changes(ctx, "c", since, 50)
		must(t, err)
		if len(page) == 0 {
			break
		}
		log = append(log, page...)
		since = page[len(page)-1].LSN
	}
	if int64(len(log)) != n {
		t.Fatalf("%d log records, want %d", len(log), n)
	}
	for i, c := range log {
		if c.LSN != int64(i+1) || got[c.LSN] != c.Version {
			t.Fatalf("log[%d] = LSN %d version %s; want LSN %d version %s", i, c.LSN, c.Version, i+1, got[int64(i+1)])
		}
	}
}

var errRefused = errors.New("refused before writing")

// testTryGivesBackNumbers: numbers taken inside a failed Try are taken
// again after it, and a CreateItem of an item that exists takes none.
func testTryGivesBackNumbers(t *testing.T, s *store) {
	var lsns []int64
	var cids []int64
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		err := tx.Try(ctx, func() error {
			if _, err := confirm(ctx, tx, "c", "a", "p", "n1-1", "", "n1", false); err != nil {
				return err
			}
			if _, err := tx.InsertConflict(ctx, hub.ConflictRecord{Container: "c", DocID: "a", PK: "p", Kind: replica.KindReplace,
				Status: replica.StatusUnresolved, Loser: "incoming", Incoming: "n1-1"}); err != nil {
				return err
			}
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("tx.Try returned %v, want fn's error", err)
		}
		lsn, created, err := tx.CreateItem(ctx, "c", "a", "p", "n1-1")
		if err != nil || !created {
			return fmt.Errorf("tx.CreateItem after the Try: %v, %v", created, err)
		}
		lsns = append(lsns, lsn)
		if _, created, err := tx.CreateItem(ctx, "c", "a", "p", "n1-2"); err != nil || created {
			return fmt.Errorf("tx.CreateItem of an item that exists: created %v, %v", created, err)
		}
		lsn, err = tx.NextLSN(ctx)
		lsns = append(lsns, lsn)
		if err != nil {
			return err
		}
		cid, err := tx.InsertConflict(ctx, hub.ConflictRecord{Container: "c", DocID: "a", PK: "p", Kind: replica.KindReplace,
			Status: replica.StatusUnresolved, Loser: "incoming", Incoming: "n1-3"})
		cids = append(cids, cid)
		if err != nil {
			return err
		}
		e := hub.LogRecord{LSN: lsns[0], Container: "c", ID: "a", PK: "p", Op: replica.OpCreate, Version: "n1-1", Origin: "n1", Policy: replica.ModeLWW}
		if err := tx.InsertVersion(ctx, hub.VersionRecord{Version: "n1-1", Container: "c", ID: "a", PK: "p", Op: replica.OpCreate, Origin: "n1",
			Body: doc("a", "p", "1"), Outcome: replica.OutcomeConfirmed, LSN: lsns[0]}); err != nil {
			return err
		}
		if err := tx.AppendLog(ctx, e); err != nil {
			return err
		}
		e.LSN, e.Version, e.Base, e.Op = lsns[1], "n1-2", "n1-1", replica.OpReplace
		if err := tx.InsertVersion(ctx, hub.VersionRecord{Version: "n1-2", Container: "c", ID: "a", PK: "p", Op: replica.OpReplace, Base: "n1-1",
			Origin: "n1", Body: doc("a", "p", "2"), Outcome: replica.OutcomeConfirmed, LSN: lsns[1]}); err != nil {
			return err
		}
		if err := tx.AppendLog(ctx, e); err != nil {
			return err
		}
		return tx.SetItem(ctx, e, true)
	}))
	if lsns[0] != 1 || lsns[1] != 2 || cids[0] <= 0 {
		t.Fatalf("LSNs %v after a failed Try, want [1 2]; conflict id %v", lsns, cids)
	}
	ctx := context.Background()
	hd, err := s.Heads(ctx)
	if err != nil || hd.LSN != 2 || hd.Cseq != 1 {
		t.Fatalf("Heads()=%+v, %v; want LSN 2, conflict sequence 1", hd, err)
	}
	it, found, err := s.Item(ctx, "c", "a")
	if err != nil || !found || it.Version != "n1-2" || it.LSN != 2 {
		t.Fatalf("Item()=%+v, %v, %v; want version n1-2 at LSN 2", it, found, err)
	}
}

func testIdempotentVersions(t *testing.T, s *store) {
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if _, err := confirm(ctx, tx, "c", "a", "p", "n1-1", "", "n1", false); err != nil {
			return err
		}
		return tx.InsertVersion(ctx, hub.VersionRecord{Version: "n2-1", Container: "c", ID: "a", PK: "p", Op: replica.OpReplace, Base: "",
			Origin: "n2", TS: 5, Body: doc("a", "p", "lost"), Outcome: replica.OutcomeLost, LSN: 1, Reason: "older", ConflictID: 7})
	}))
	err := do(s, func(ctx context.Context, tx hub.Tx) error {
		return tx.InsertVersion(ctx, hub.VersionRecord{Version: "n1-1", Container: "c", ID: "a", PK: "p", Op: replica.OpCreate, Origin: "n1"})
	})
	if err == nil {
		t.Fatalf("InsertVersion of a version id stored before succeeded")
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		p, found, err := tx.Outcome(ctx, "n1-1")
		if err != nil || !found || p.Outcome != replica.OutcomeConfirmed || p.LSN != 1 || p.CRTS != 1001 {
			return fmt.Errorf("tx.Outcome(n1-1) = %+v, %v, %v; want confirmed at LSN 1, crts 1001", p, found, err)
		}
		p, found, err = tx.Outcome(ctx, "n2-1")
		if err != nil || !found || p.Outcome != replica.OutcomeLost || p.Reason != "older" || p.ConflictID != 7 || p.CRTS != 0 {
			return fmt.Errorf("tx.Outcome(n2-1) = %+v, %v, %v; want lost, older, conflict 7", p, found, err)
		}
		if _, found, err := tx.Outcome(ctx, "n3-1"); err != nil || found {
			return fmt.Errorf("tx.Outcome of an unknown version: found %v, %v", found, err)
		}
		if err := tx.SetOutcome(ctx, "n2-1", replica.OutcomeConfirmed, 1, "resolved"); err != nil {
			return err
		}
		p, _, err = tx.Outcome(ctx, "n2-1")
		if err != nil || p.Outcome != replica.OutcomeConfirmed || p.Reason != "resolved" {
			return fmt.Errorf("tx.Outcome after SetOutcome = %+v, %v", p, err)
		}
		v, found, err := tx.Version(ctx, "c", "a", "n2-1")
		if err != nil || !found || string(v.Body) != string(doc("a", "p", "lost")) || v.Origin != "n2" || v.TS != 5 || v.Op != replica.OpReplace {
			return fmt.Errorf("tx.Version(n2-1) = %+v, %v, %v", v, found, err)
		}
		if _, found, err := tx.Version(ctx, "c", "other", "n2-1"); err != nil || found {
			return fmt.Errorf("tx.Version of another item's version: found %v, %v; want not found", found, err)
		}
		return nil
	}))
}

// testPushOrder: a node's push order is the zero PushOrder until stored;
// stored, it is read back in the transaction and after it, a failed Try
// undoes what it stored, and each node has its own; after Prefetch named
// the node, PushOrder answers the same.
func testPushOrder(t *testing.T, s *store) {
	read := func(ctx context.Context, tx hub.Tx, node string, want hub.PushOrder) error {
		if got, err := tx.PushOrder(ctx, node); err != nil || got != want {
			return fmt.Errorf("tx.PushOrder(%s) = %+v, %v; want %+v", node, got, err, want)
		}
		return nil
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := read(ctx, tx, "n1", hub.PushOrder{}); err != nil {
			return err
		}
		if err := tx.SetPushOrder(ctx, "n1", hub.PushOrder{Held: 9, HeldAt: 1700}); err != nil {
			return err
		}
		err := tx.Try(ctx, func() error {
			if err := tx.SetPushOrder(ctx, "n1", hub.PushOrder{Held: 12, HeldAt: 1800}); err != nil {
				return err
			}
			if err := read(ctx, tx, "n1", hub.PushOrder{Held: 12, HeldAt: 1800}); err != nil {
				return err
			}
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("tx.Try returned %v, want fn's error", err)
		}
		return read(ctx, tx, "n1", hub.PushOrder{Held: 9, HeldAt: 1700})
	}))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := read(ctx, tx, "n1", hub.PushOrder{Held: 9, HeldAt: 1700}); err != nil {
			return err
		}
		if err := read(ctx, tx, "n2", hub.PushOrder{}); err != nil {
			return err
		}
		return tx.SetPushOrder(ctx, "n1", hub.PushOrder{})
	}))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		return read(ctx, tx, "n1", hub.PushOrder{})
	}))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := tx.SetPushOrder(ctx, "n2", hub.PushOrder{Held: 4, HeldAt: 1900}); err != nil {
			return err
		}
		if err := tx.Prefetch(ctx, nil, nil, "n2"); err != nil {
			return err
		}
		if err := errors.Join(read(ctx, tx, "n1", hub.PushOrder{}), read(ctx, tx, "n2", hub.PushOrder{Held: 4, HeldAt: 1900})); err != nil {
			return err
		}
		if err := tx.Prefetch(ctx, nil, nil, "n2"); err != nil {
			return err
		}
		if err := tx.SetPushOrder(ctx, "n2", hub.PushOrder{Held: 5, HeldAt: 2000}); err != nil {
			return err
		}
		return read(ctx, tx, "n2", hub.PushOrder{Held: 5, HeldAt: 2000})
	}))
}

// testPrefetch: after Prefetch, Head, Outcome, CreateItem and
// InsertVersion answer as without it, through the job's own writes and a
// failed Try, whether the Try sent anything to storage (a read inside it)
// or not.
func testPrefetch(t *testing.T, s *store) {
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		_, err := confirm(ctx, tx, "c", "a", "p", "n1-1", "", "n1", false)
		return err
	}))
	a, b, c := hub.ItemKey{Container: "c", ID: "a"}, hub.ItemKey{Container: "c", ID: "b"}, hub.ItemKey{Container: "c", ID: "c"}
	head := func(ctx context.Context, tx hub.Tx, k hub.ItemKey, want string) error {
		hd, found, err := tx.Head(ctx, k.Container, k.ID)
		switch {
		case err != nil:
			return err
		case want == "" && found:
			return fmt.Errorf("tx.Head(%s) = %+v, want none", k.ID, hd)
		case want != "" && (!found || hd.Version != want):
			return fmt.Errorf("tx.Head(%s) = %+v, %v; want version %s", k.ID, hd, found, want)
		}
		return nil
	}
	outcome := func(ctx context.Context, tx hub.Tx, version, want string) error {
		p, found, err := tx.Outcome(ctx, version)
		switch {
		case err != nil:
			return err
		case want == "" && found:
			return fmt.Errorf("tx.Outcome(%s) = %+v, want none", version, p)
		case want != "" && (!found || p.Outcome != want):
			return fmt.Errorf("tx.Outcome(%s) = %+v, %v; want %s", version, p, found, want)
		}
		return nil
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := tx.Prefetch(ctx, []hub.ItemKey{a, b, c}, []string{"n1-1", "n2-1", "n3-1"}, ""); err != nil {
			return err
		}
		if err := errors.Join(head(ctx, tx, a, "n1-1"), head(ctx, tx, b, ""), outcome(ctx, tx, "n1-1", replica.OutcomeConfirmed),
			outcome(ctx, tx, "n2-1", "")); err != nil {
			return err
		}
		if p, _, err := tx.Outcome(ctx, "n1-1"); err != nil || p.LSN != 1 || p.CRTS != 1001 {
			return fmt.Errorf("tx.Outcome(n1-1) = %+v, %v; want LSN 1, crts 1001", p, err)
		}
		if _, created, err := tx.CreateItem(ctx, "c", "a", "p", "n1-9"); err != nil || created {
			return fmt.Errorf("tx.CreateItem of a prefetched item that exists: created %v, %v", created, err)
		}
		// A Try that fails without reading: its item and version are not
		// there after it, and its LSN is taken again.
		err := tx.Try(ctx, func() error {
			if lsn, created, err := tx.CreateItem(ctx, "c", "b", "p", "n2-1"); err != nil || !created || lsn != 2 {
				return fmt.Errorf("tx.CreateItem(b) = %d, %v, %v; want created at LSN 2", lsn, created, err)
			}
			if err := tx.InsertVersion(ctx, hub.VersionRecord{Version: "n2-1", Container: "c", ID: "b", PK: "p", Op: replica.OpCreate, Origin: "n2",
				Body: doc("b", "p", "1"), Outcome: replica.OutcomeConfirmed, LSN: 2}); err != nil {
				return err
			}
			if err := errors.Join(head(ctx, tx, b, "n2-1"), outcome(ctx, tx, "n2-1", replica.OutcomeConfirmed)); err != nil {
				return err
			}
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("tx.Try returned %v, want fn's error", err)
		}
		if err := errors.Join(head(ctx, tx, b, ""), outcome(ctx, tx, "n2-1", "")); err != nil {
			return fmt.Errorf("after a failed Try: %w", err)
		}
		// A Try that reads storage, then fails.
		err = tx.Try(ctx, func() error {
			if _, created, err := tx.CreateItem(ctx, "c", "c", "p", "n3-1"); err != nil || !created {
				return fmt.Errorf("tx.CreateItem(c): created %v, %v", created, err)
			}
			e := hub.LogRecord{LSN: 9, Container: "c", ID: "a", PK: "p", Op: replica.OpReplace, Version: "n1-2", Base: "n1-1", Origin: "n1", Policy: replica.ModeLWW}
			if err := tx.SetItem(ctx, e, true); err != nil {
				return err
			}
			if _, _, err := tx.Version(ctx, "c", "a", "n1-1"); err != nil {
				return err
			}
			return errors.Join(head(ctx, tx, a, "n1-2"), head(ctx, tx, c, "n3-1"), errRefused)
		})
		if !errors.Is(err, errRefused) || strings.Contains(err.Error(), "tx.Head") {
			return fmt.Errorf("tx.Try returned %v, want fn's error alone", err)
		}
		if err := errors.Join(head(ctx, tx, a, "n1-1"), head(ctx, tx, c, "")); err != nil {
			return fmt.Errorf("after a failed Try that read: %w", err)
		}
		// A version stored in the transaction is stored: storing it again
		// fails (and undoes what the Try wrote).
		err = tx.Try(ctx, func() error {
			lsn, created, err := tx.CreateItem(ctx, "c", "b", "p", "n2-1")
			if err != nil || !created || lsn != 2 {
				return fmt.Errorf("tx.CreateItem(b) = %d, %v, %v; want created at LSN 2", lsn, created, err)
			}
			v := hub.VersionRecord{Version: "n2-1", Container: "c", ID: "b", PK: "p", Op: replica.OpCreate, Origin: "n2",
				Body: doc("b", "p", "1"), Outcome: replica.OutcomeConfirmed, LSN: lsn}
			if err := tx.InsertVersion(ctx, v); err != nil {
				return err
			}
			if err := tx.AppendLog(ctx, hub.LogRecord{LSN: lsn, Container: "c", ID: "b", PK: "p", Op: replica.OpCreate, Version: "n2-1",
				Origin: "n2", CRTS: 1002, Policy: replica.ModeLWW}); err != nil {
				return err
			}
			if err := tx.Try(ctx, func() error { return tx.InsertVersion(ctx, v) }); err == nil {
				return fmt.Errorf("tx.InsertVersion of a version stored in this transaction succeeded")
			}
			return nil
		})
		if err != nil {
			return err
		}
		return errors.Join(head(ctx, tx, b, "n2-1"), outcome(ctx, tx, "n2-1", replica.OutcomeConfirmed))
	}))
	ctx := context.Background()
	if it, found, err := s.Item(ctx, "c", "b"); err != nil || !found || it.Version != "n2-1" || it.LSN != 2 || it.CRTS != 1002 {
		t.Fatalf("Item(b) = %+v, %v, %v; want n2-1 at LSN 2", it, found, err)
	}
	if it, found, err := s.Item(ctx, "c", "a"); err != nil || !found || it.Version != "n1-1" {
		t.Fatalf("Item(a) = %+v, %v, %v; want n1-1", it, found, err)
	}
	if _, found, err := s.Item(ctx, "c", "c"); err != nil || found {
		t.Fatalf("Item(c): found %v, %v; want none", found, err)
	}
	if hd, err := s.Heads(ctx); err != nil || hd.LSN != 2 {
		t.Fatalf("Heads() = %+v, %v; want LSN 2", hd, err)
	}
}

func testHeads(t *testing.T, s *store) {
	ctx := context.Background()
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		for i := range 5 {
			id := fmt.Sprintf("i%d", i)
			if _, err := confirm(ctx, tx, "c", id, fmt.Sprintf("p%d", i%2), "n1-"+fmt.Sprint(i+1), "", "n1", false); err != nil {
				return err
			}
		}
		if _, err := confirm(ctx, tx, "c", "i1", "p1", "n1-10", "n1-2", "n1", false); err != nil {
			return err
		}
		_, err := confirm(ctx, tx, "c", "i2", "p0", "n1-11", "n1-3", "n1", true)
		return err
	}))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		hd, found, err := tx.Head(ctx, "c", "i1")
		if err != nil || !found || hd != (hub.ItemHead{PK: "p1", Version: "n1-10", LSN: 6}) {
			return fmt.Errorf("tx.Head(i1) = %+v, %v, %v", hd, found, err)
		}
		hd, found, err = tx.Head(ctx, "c", "i2")
		if err != nil || !found || !hd.Deleted || hd.LSN != 7 {
			return fmt.Errorf("tx.Head(i2) = %+v, %v, %v; want deleted at 7", hd, found, err)
		}
		if _, found, err := tx.Head(ctx, "c", "none"); err != nil || found {
			return fmt.Errorf("tx.Head of an unknown item: found %v, %v", found, err)
		}
		if b, err := tx.VersionBase(ctx, "n1-10"); err != nil || b != "n1-2" {
			return fmt.Errorf("tx.VersionBase(n1-10) = %q, %v", b, err)
		}
		if b, err := tx.VersionBase(ctx, "unknown"); err != nil || b != "" {
			return fmt.Errorf("tx.VersionBase(unknown) = %q, %v", b, err)
		}
		return nil
	}))
	it, found, err := s.Item(ctx, "c", "i1")
	if err != nil || !found || it.Version != "n1-10" || it.Base != "n1-2" || it.CRTS != 1006 || string(it.Body) != string(doc("i1", "p1", "n1-10")) {
		t.Fatalf("Item(i1) = %+v, %v, %v", it, found, err)
	}
	if it, found, err := s.Item(ctx, "c", "i2"); err != nil || !found || !it.Deleted {
		t.Fatalf("Item(i2) = %+v, %v, %v; want the tombstone", it, found, err)
	}
	var ids []string
	cont := ""
	for range 10 {
		page, next, err := s.ListItems(ctx, "c", nil, 2, cont, "t:")
		must(t, err)
		for _, it := range page {
			ids = append(ids, it.ID)
		}
		if cont = next; cont == "" {
			break
		}
	}
	if got := strings.Join(ids, ","); got != "i0,i1,i3,i4" {
		t.Fatalf("ListItems pages: %s, want i0,i1,i3,i4", got)
	}
	pk := "p1"
	page, _, err := s.ListItems(ctx, "c", &pk, 10, "", "t:")
	if err != nil || len(page) != 2 || page[0].ID != "i1" || page[1].ID != "i3" {
		t.Fatalf("ListItems(pk p1) = %+v, %v", page, err)
	}
	ids = ids[:0]
	for after, chunks := "", 0; chunks < 10; chunks++ {
		read, err := s.ScanItems(ctx, "c", after, 3, func(it replica.Item) error {
			ids, after = append(ids, it.ID), it.ID
			return nil
		})
		must(t, err)
		if read < 3 {
			break
		}
	}
	if got := strings.Join(ids, ","); got != "i0,i1,i3,i4" {
		t.Fatalf("ScanItems chunks: %s, want i0,i1,i3,i4", got)
	}
	stop := errors.New("stop")
	if read, err := s.ScanItems(ctx, "c", "", 10, func(replica.Item) error { return stop }); read != 1 || !errors.Is(err, stop) {
		t.Fatalf("ScanItems with fn failing = %d, %v; want 1, fn's error", read, err)
	}
	if n, err := s.CountItems(ctx, "c"); err != nil || n != 4 {
		t.Fatalf("CountItems = %d, %v; want 4", n, err)
	}
	vs, err := s.ItemVersions(ctx, "c", "i1", 10)
	if err != nil || len(vs) != 2 || vs[0].Version != "n1-2" || vs[1].Version != "n1-10" || !vs[1].Confirmed || vs[1].LSN != 6 {
		t.Fatalf("ItemVersions(i1) = %+v, %v", vs, err)
	}
}

func testLogPaging(t *testing.T, s *store) {
	ctx := context.Background()
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		for i := range 20 {
			origin := "n1"
			if i%4 == 0 {
				origin = "n2"
			}
			if _, err := confirm(ctx, tx, []string{"a", "b"}[i%2], fmt.Sprintf("i%d", i), fmt.Sprintf("p%d", i%3), fmt.Sprintf("%s-%d", origin, i+1), "",
				origin, false); err != nil {
				return err
			}
		}
		return nil
	}))
	ch, err := s.Changes(ctx, "a", 4, 3)
	if err != nil || len(ch) != 3 || ch[0].LSN != 5 || ch[2].LSN != 9 {
		t.Fatalf("Changes(a, 4, 3) = %+v, %v; want LSNs 5, 7, 9", ch, err)
	}
	out, last, err := s.LogAfter(ctx, 0, 20, 100, 1<<20, nil, "n2")
	if err != nil || len(out) != 15 || last != 20 {
		t.Fatalf("LogAfter without n2 = %d records, last %d, %v; want 15, 20", len(out), last, err)
	}
	for _, c := range out {
		if c.Origin == "n2" || len(c.Body) == 0 {
			t.Fatalf("LogAfter returned %+v", c)
		}
	}
	out, last, err = s.LogAfter(ctx, 0, 12, 100, 1<<20, nil, "")
	if err != nil || len(out) != 12 || last != 12 {
		t.Fatalf("LogAfter up to 12 = %d records, last %d, %v", len(out), last, err)
	}
	out, last, err = s.LogAfter(ctx, 0, 20, 5, 1<<20, nil, "")
	if err != nil || len(out) != 5 || last != 5 {
		t.Fatalf("LogAfter limit 5 = %d records, last %d, %v", len(out), last, err)
	}
	out, last, err = s.LogAfter(ctx, 0, 20, 100, 1, nil, "")
	if err != nil || len(out) != 1 || last != 1 {
		t.Fatalf("LogAfter maxBytes 1 = %d records, last %d, %v; want 1 record", len(out), last, err)
	}
	scope := []wire.ScopeEntry{{Container: "a", PartitionKeys: []string{"p1"}}, {Container: "b"}}
	out, last, err = s.LogAfter(ctx, 0, 20, 100, 1<<20, scope, "")
	if err != nil || last != 20 {
		t.Fatalf("LogAfter scoped: last %d, %v", last, err)
	}
	var got []int64
	for _, c := range out {
		got = append(got, c.LSN)
	}
	// a is even i (LSN i+1 odd); a with p1: i%3 == 1 → i 4, 10, 16; b: every odd i.
	want := []int64{2, 4, 5, 6, 8, 10, 11, 12, 14, 16, 17, 18, 20}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("LogAfter scoped LSNs %v, want %v", got, want)
	}
}

func testConflicts(t *testing.T, s *store) {
	ctx := context.Background()
	var cids []int64
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if _, err := confirm(ctx, tx, "c", "a", "p", "n1-1", "", "n1", false); err != nil {
			return err
		}
		if _, err := confirm(ctx, tx, "c", "a", "p", "n1-2", "n1-1", "n1", false); err != nil {
			return err
		}
		for i := range 5 {
			container := "c"
			if i == 4 {
				container = "d"
			}
			cid, err := tx.InsertConflict(ctx, hub.ConflictRecord{Container: container, DocID: "a", PK: "p", Kind: replica.KindReplace,
				Status: replica.StatusUnresolved, Policy: replica.ModeLWW, Loser: "incoming", Incoming: "n1-2", Existing: "n1-1", Base: "",
				WinnerLSN: 1, Reason: "r", CreatedAt: 9, Resolver: ""})
			if err != nil {
				return err
			}
			cids = append(cids, cid)
		}
		return nil
	}))
	for i := 1; i < len(cids); i++ {
		if cids[i] <= cids[i-1] {
			t.Fatalf("conflict ids %v, want increasing", cids)
		}
	}
	page, err := s.Conflicts(ctx, "c", "", 0, 2)
	if err != nil || len(page) != 2 || page[0].ID != cids[0] || page[1].ID != cids[1] {
		t.Fatalf("Conflicts page 1 = %+v, %v", page, err)
	}
	if page[0].Existing == nil || page[0].Existing.Version != "n1-1" || page[0].Incoming == nil || page[0].Base != nil {
		t.Fatalf("conflict sides %+v %+v %+v", page[0].Incoming, page[0].Existing, page[0].Base)
	}
	page, err = s.Conflicts(ctx, "c", replica.StatusUnresolved, page[1].ID, 10)
	if err != nil || len(page) != 2 {
		t.Fatalf("Conflicts page 2 = %d, %v; want 2", len(page), err)
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		sides, pk, status, found, err := tx.ConflictToSettle(ctx, "c", cids[1])
		if err != nil || !found || pk != "p" || status != replica.StatusUnresolved || sides.Incoming != "n1-2" || sides.DocID != "a" {
			return fmt.Errorf("tx.ConflictToSettle = %+v %q %q %v %v", sides, pk, status, found, err)
		}
		if _, _, _, found, err := tx.ConflictToSettle(ctx, "c", cids[4]); err != nil || found {
			return fmt.Errorf("tx.ConflictToSettle of another container's conflict: found %v, %v", found, err)
		}
		return tx.SettleConflict(ctx, cids[1], 2, "resolved: kept incoming")
	}))
	hd, err := s.Heads(ctx)
	if err != nil || hd.Cseq != 6 || s.reported().Cseq != 6 {
		t.Fatalf("Heads()=%+v, %v (reported %+v); want conflict sequence 6", hd, err, s.reported())
	}
	page, err = s.Conflicts(ctx, "c", replica.StatusResolved, 0, 10)
	if err != nil || len(page) != 1 || page[0].ID != cids[1] || page[0].Seq != 6 || page[0].WinnerLSN != 2 || page[0].Reason != "r; resolved: kept incoming" {
		t.Fatalf("resolved conflicts = %+v, %v", page, err)
	}
	if n, err := s.CountUnresolved(ctx, "c"); err != nil || n != 3 {
		t.Fatalf("CountUnresolved(c) = %d, %v; want 3", n, err)
	}
	if n, err := s.CountUnresolved(ctx, ""); err != nil || n != 4 {
		t.Fatalf("CountUnresolved() = %d, %v; want 4", n, err)
	}
	feed, last, err := s.ConflictsAfter(ctx, 0, 6, 100, 1<<20, []wire.ScopeEntry{{Container: "c"}})
	if err != nil || last != 6 || len(feed) != 4 || feed[3].ID != cids[1] || feed[3].Seq != 6 {
		t.Fatalf("ConflictsAfter = %d records, last %d, %v", len(feed), last, err)
	}
	feed, last, err = s.ConflictsAfter(ctx, 0, 6, 2, 1<<20, nil)
	if err != nil || last != 3 || len(feed) != 2 || feed[1].Seq != 3 {
		t.Fatalf("ConflictsAfter limit 2 = %d records, last %d, %v; want sequences 1 and 3 (2 was settled under 6), last 3", len(feed), last, err)
	}
	sides, found, err := s.ConflictSides(ctx, "c", cids[0])
	if err != nil || !found || sides.Kind != replica.KindReplace || sides.Existing != "n1-1" {
		t.Fatalf("ConflictSides = %+v, %v, %v", sides, found, err)
	}
	cv, err := s.ConflictVersion(ctx, "c", "a", "n1-2")
	if err != nil || cv == nil || cv.Version != "n1-2" || string(cv.Document) != string(doc("a", "p", "n1-2")) {
		t.Fatalf("ConflictVersion = %+v, %v", cv, err)
	}
	if cv, err := s.ConflictVersion(ctx, "c", "b", "n1-2"); err != nil || cv != nil {
		t.Fatalf("ConflictVersion of another item = %+v, %v; want nil", cv, err)
	}
}

func testEdges(t *testing.T, s *store) {
	ctx := context.Background()
	scope, _ := json.Marshal([]wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"p"}}})
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := tx.InsertEdge(ctx, "e1", "hash1", string(scope), 10); err != nil {
			return err
		}
		return tx.InsertEdge(ctx, "e2", "hash2", "[]", 11)
	}))
	err := do(s, func(ctx context.Context, tx hub.Tx) error { return tx.InsertEdge(ctx, "e1", "hash3", "[]", 12) })
	if !errors.Is(err, replica.ErrExists) {
		t.Fatalf("InsertEdge of a registered name: %v, want ErrExists", err)
	}
	e, found, err := s.EdgeByTokenHash(ctx, "hash1")
	if err != nil || !found || e.Name != "e1" || len(e.Scope) != 1 || e.Scope[0].PartitionKeys[0] != "p" || e.CreatedAt != 10 {
		t.Fatalf("EdgeByTokenHash = %+v, %v, %v", e, found, err)
	}
	if _, found, err := s.EdgeByTokenHash(ctx, "hash3"); err != nil || found {
		t.Fatalf("EdgeByTokenHash(unknown) found %v, %v", found, err)
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if n, found, err := tx.EdgeNode(ctx, "e1"); err != nil || !found || n != "" {
			return fmt.Errorf("tx.EdgeNode before binding = %q, %v, %v", n, found, err)
		}
		if err := tx.BindEdge(ctx, "e1", "n1", 3, 7, 20); err != nil {
			return err
		}
		if n, _, err := tx.EdgeNode(ctx, "e1"); err != nil || n != "n1" {
			return fmt.Errorf("tx.EdgeNode after binding = %q, %v", n, err)
		}
		if other, found, err := tx.EdgeOfNode(ctx, "n1", "e2"); err != nil || !found || other != "e1" {
			return fmt.Errorf("tx.EdgeOfNode(n1, e2) = %q, %v, %v; want e1", other, found, err)
		}
		if _, found, err := tx.EdgeOfNode(ctx, "n1", "e1"); err != nil || found {
			return fmt.Errorf("tx.EdgeOfNode(n1, e1) found %v, %v; want none", found, err)
		}
		if _, found, err := tx.EdgeNode(ctx, "nobody"); err != nil || found {
			return fmt.Errorf("tx.EdgeNode(nobody) found %v, %v", found, err)
		}
		if err := tx.RecordAck(ctx, "e1", "n1", 4, 9, 30); err != nil {
			return err
		}
		if err := tx.RecordAck(ctx, "e1", "n2", 99, 99, 31); err != nil { // not its node: ignored
			return err
		}
		if err := tx.RecordClock(ctx, "e1", -250, 32); err != nil {
			return err
		}
		if err := tx.InsertVersion(ctx, hub.VersionRecord{Version: "n1-1", Container: "c", ID: "a", PK: "p", Op: replica.OpCreate, Origin: "n1",
			TS: 99999, Outcome: replica.OutcomeLost, Reason: "r"}); err != nil {
			return err
		}
		return tx.RecordClamp(ctx, "n1", "n1-1", 0, 50)
	}))
	es, err := s.Edges(ctx)
	must(t, err)
	if len(es) != 2 || es[0].Name != "e1" || es[1].Name != "e2" {
		t.Fatalf("Edges() = %+v", es)
	}
	if e := es[0]; e.NodeID != "n1" || e.Pending != 4 || e.AckedLSN != 9 || e.LastSeen != 30 || e.ClockSkew != -250 || e.ClockMeasuredAt != 32 || e.Clamped != 1 {
		t.Fatalf("edge e1 = %+v", e)
	}
	if n, err := s.ClampedTotal(ctx); err != nil || n != 1 {
		t.Fatalf("ClampedTotal = %d, %v; want 1", n, err)
	}
	cv, err := s.ConflictVersion(ctx, "c", "a", "n1-1")
	if err != nil || cv == nil || cv.ClampedTS != 50 {
		t.Fatalf("clamped version = %+v, %v; want clampedTs 50", cv, err)
	}
	var deleted, again bool
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		var err error
		if deleted, err = tx.DeleteEdge(ctx, "e1"); err != nil {
			return err
		}
		again, err = tx.DeleteEdge(ctx, "e1")
		return err
	}))
	if !deleted || again {
		t.Fatalf("DeleteEdge found %v, then %v; want true, then false", deleted, again)
	}
	if _, found, err := s.EdgeByTokenHash(ctx, "hash1"); err != nil || found {
		t.Fatalf("a deleted edge's token still found (%v)", err)
	}
}

func testSessions(t *testing.T, s *store) {
	ctx := context.Background()
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		if err := tx.CreateSession(ctx, "old", "b", 1000, 2000, 10); err != nil {
			return err
		}
		for i := range 5 {
			if err := tx.CreateSession(ctx, fmt.Sprintf("s%d", i), "b", int64(3000+i), 9000, 3); err != nil {
				return err
			}
		}
		return nil
	}))
	if _, _, found, err := s.Session(ctx, "old"); err != nil || found {
		t.Fatalf("an expired session was kept (%v)", err)
	}
	for i, want := range []bool{false, false, true, true, true} {
		binding, expires, found, err := s.Session(ctx, fmt.Sprintf("s%d", i))
		if err != nil || found != want || found && (binding != "b" || expires != 9000) {
			t.Fatalf("Session(s%d) = %q, %d, %v, %v; want found %v", i, binding, expires, found, err, want)
		}
	}
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error { return tx.DeleteSession(ctx, "s4") }))
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error { return tx.DeleteSession(ctx, "s4") }))
	if _, _, found, err := s.Session(ctx, "s4"); err != nil || found {
		t.Fatalf("a deleted session was found (%v)", err)
	}
}

func testResolvers(t *testing.T, s *store) {
	ctx := context.Background()
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		for _, v := range []hub.ResolverVersion{{Name: "r", Version: 2, SHA256: "s2", Size: 8, UploadedAt: 5}, {Name: "r", Version: 1, SHA256: "s1", Size: 8, UploadedAt: 4},
			{Name: "a", Version: 1, SHA256: "s3", Size: 8, UploadedAt: 6}} {
			if err := tx.InsertResolver(ctx, v, wasm); err != nil {
				return err
			}
		}
		return tx.SaveResolverCounts(ctx, "r", 2, 42, `{"trap":2}`)
	}))
	err := do(s, func(ctx context.Context, tx hub.Tx) error {
		return tx.InsertResolver(ctx, hub.ResolverVersion{Name: "r", Version: 1, SHA256: "x"}, wasm)
	})
	if err == nil {
		t.Fatalf("InsertResolver of a stored version succeeded")
	}
	rs, err := s.Resolvers(ctx)
	must(t, err)
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s %d %d %s", r.Label(), r.Calls, len(r.Wasm), r.Failures))
		if string(r.Wasm) != string(wasm) {
			t.Fatalf("resolver %s module %q, want %q", r.Label(), r.Wasm, wasm)
		}
	}
	if want := `[a@1 0 8 {} r@1 0 8 {} r@2 42 8 {"trap":2}]`; fmt.Sprint(got) != want {
		t.Fatalf("Resolvers() = %v, want %s", got, want)
	}
}

// RunReopen checks that a store opened again on the same storage reads its
// heads and hub id from it and numbers on from them. open returns a new,
// not yet opened store over the same storage on every call.
func RunReopen(t *testing.T, open func() hub.Store) {
	ctx := context.Background()
	s := open()
	must(t, s.Open(ctx, nil))
	id, err := s.HubID(ctx)
	must(t, err)
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		for i := range 3 {
			if _, err := confirm(ctx, tx, "c", fmt.Sprintf("i%d", i), "p", fmt.Sprintf("n1-%d", i+1), "", "n1", false); err != nil {
				return err
			}
		}
		_, err := tx.InsertConflict(ctx, hub.ConflictRecord{Container: "c", DocID: "i0", PK: "p", Kind: replica.KindReplace,
			Status: replica.StatusUnresolved, Loser: "incoming", Incoming: "n1-1"})
		return err
	}))
	must(t, s.Close(ctx))

	s = open()
	must(t, s.Open(ctx, nil))
	defer s.Close(ctx)
	again, err := s.HubID(ctx)
	if err != nil || again != id {
		t.Fatalf("HubID() after reopening = %q, %v; want %q", again, err, id)
	}
	hd, err := s.Heads(ctx)
	if err != nil || hd != (hub.Heads{LSN: 3, Cseq: 1}) {
		t.Fatalf("Heads() after reopening = %+v, %v; want LSN 3, conflict sequence 1", hd, err)
	}
	var lsn int64
	must(t, do(s, func(ctx context.Context, tx hub.Tx) error {
		var err error
		lsn, err = confirm(ctx, tx, "c", "i3", "p", "n1-4", "", "n1", false)
		return err
	}))
	if lsn != 4 {
		t.Fatalf("first LSN after reopening %d, want 4", lsn)
	}
}
