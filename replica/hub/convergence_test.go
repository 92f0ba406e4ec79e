package hub_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
)

var (
	convSeed = flag.Uint64("seed", 1, "seed of TestConvergence_Random")
	convLong = flag.Duration("long", 0, "run TestConvergence_Random this long with random seeds (0: one fixed-seed run)")
)

// TestConvergence_Random runs N edges writing and deleting on a small key
// space with random disconnects and restarts, then heals, and checks that
// every replica equals the hub, that every acknowledged write was either
// confirmed into the log or is in the conflicts feed, that no version was
// confirmed twice, and that each edge learnt exactly one outcome per write.
//
//	go test ./replica/hub -run Convergence -seed 42
//	go test ./replica/hub -run Convergence -long 5m
func TestConvergence_Random(t *testing.T) {
	if *convLong == 0 {
		for _, mode := range []string{replica.ModeLWW, replica.ModeMerge} {
			t.Run(mode, func(t *testing.T) { runConvergence(t, *convSeed, mode, 250) })
		}
		return
	}
	deadline := time.Now().Add(*convLong)
	for i := 0; time.Now().Before(deadline); i++ {
		seed := *convSeed + uint64(i)
		mode := []string{replica.ModeLWW, replica.ModeMerge}[i%2]
		t.Run(fmt.Sprintf("seed%d-%s", seed, mode), func(t *testing.T) { runConvergence(t, seed, mode, 600) })
		if t.Failed() {
			return
		}
	}
}

func runConvergence(t *testing.T, seed uint64, mode string, steps int) {
	t.Logf("seed %d, policy %s, %d steps", seed, mode, steps)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ctx := context.Background()
	c := newCluster(t)
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "kv", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: mode}}); err != nil {
		t.Fatal(err)
	}
	const nEdges, nKeys = 5, 6
	edges := make([]*testEdge, nEdges)
	online := make([]bool, nEdges)
	for i := range edges {
		edges[i] = c.edge(fmt.Sprintf("e%d", i), nil)
		online[i] = true
	}
	for _, e := range edges {
		eventually(t, 10*time.Second, func() error { _, err := e.r.Container("kv"); return err })
	}
	acked := map[string]int{} // version -> edge index
	writes := make([]int, nEdges)
	for step := range steps {
		i := rng.IntN(nEdges)
		e := edges[i]
		id := fmt.Sprintf("k%d", rng.IntN(nKeys))
		switch r := rng.IntN(100); {
		case r < 60:
			// Mostly the key's usual partition key; sometimes another, which
			// an edge accepts only for an item it has deleted (or never had)
			// and the hub only if it agrees: a partition key moves.
			pk := "p-" + id
			if rng.IntN(8) == 0 {
				pk = "q-" + id
			}
			body := fmt.Sprintf(`{"id":%q,"p":%q,"v%d":%d,"n":%d}`, id, pk, rng.IntN(3), step, rng.IntN(1000))
			it, _, err := e.r.Upsert(ctx, "kv", id, []byte(body), edge.WriteOptions{})
			if errors.Is(err, replica.ErrPartitionKeyChange) {
				continue
			}
			if err != nil {
				t.Fatalf("step %d: upsert on %s: %v", step, e.name, err)
			}
			acked[it.Version] = i
			writes[i]++
		case r < 72:
			err := e.r.Delete(ctx, "kv", id, edge.WriteOptions{})
			if err != nil && !errors.Is(err, replica.ErrNotFound) {
				t.Fatalf("step %d: delete on %s: %v", step, e.name, err)
			}
			if err == nil {
				writes[i]++
			}
		case r < 82:
			if online[i] {
				e.disconnect()
			} else {
				e.connect()
			}
			online[i] = !online[i]
		case r < 88:
			e.stop()
			e.r = nil
			e.start() // restart: reopen the same data dir
			online[i] = true
		case r < 92:
			body := fmt.Sprintf(`{"id":%q,"p":"p-%s","hub":%d}`, id, id, step)
			if _, _, err := c.hub.Upsert(ctx, "kv", id, []byte(body), hub.WriteOptions{}); err != nil && !errors.Is(err, replica.ErrPartitionKeyChange) {
				t.Fatalf("step %d: hub upsert: %v", step, err)
			}
		default:
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
	}
	// Heal.
	for i, e := range edges {
		if !online[i] {
			e.connect()
		}
	}
	eventually(t, 30*time.Second, func() error {
		var errs []error
		for _, e := range edges {
			errs = append(errs, e.synced())
		}
		return errors.Join(errs...)
	})

	// Every replica equals the hub.
	for k := range nKeys {
		id := fmt.Sprintf("k%d", k)
		want, herr := c.hub.Get(ctx, "kv", id)
		for _, e := range edges {
			for _, cons := range []string{edge.ConsistencyLocal, edge.ConsistencyConfirmed} {
				got, err := e.r.Get(ctx, "kv", id, edge.ReadOptions{Consistency: cons})
				switch {
				case errors.Is(herr, replica.ErrNotFound):
					if !errors.Is(err, replica.ErrNotFound) {
						t.Errorf("%s %s (%q): has %s, hub has none", e.name, id, cons, got.Version)
					}
				case herr != nil:
					t.Fatal(herr)
				case err != nil:
					t.Errorf("%s %s (%q): %v, hub has %s", e.name, id, cons, err, want.Version)
				case got.Version != want.Version || got.LSN != want.LSN || string(got.Body) != string(want.Body) || got.Tentative || got.PK != want.PK:
					t.Errorf("%s %s (%q): %s@%d pk %s %s, hub %s@%d pk %s %s", e.name, id, cons, got.Version, got.LSN, got.PK, got.Body, want.Version, want.LSN, want.PK, want.Body)
				}
			}
		}
	}
	// No version confirmed twice; every acknowledged write confirmed or in
	// the conflicts feed.
	confirmed := map[string]int64{}
	for since := int64(0); ; {
		chs, next, err := c.hub.Changes(ctx, "kv", since, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chs {
			if lsn, dup := confirmed[ch.Version]; dup {
				t.Errorf("version %s confirmed twice: LSN %d and %d", ch.Version, lsn, ch.LSN)
			}
			confirmed[ch.Version] = ch.LSN
		}
		if len(chs) == 0 {
			break
		}
		since = next
	}
	inFeed := map[string]bool{}
	conflicts := 0
	hubFeed := map[int64]string{} // conflict id -> status
	for after := int64(0); ; {
		cs, next, err := c.hub.Conflicts(ctx, "kv", "", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, cf := range cs {
			conflicts++
			hubFeed[cf.ID] = cf.Status
			if cf.Incoming != nil {
				inFeed[cf.Incoming.Version] = true
			}
			if cf.Existing != nil {
				inFeed[cf.Existing.Version] = true
			}
		}
		if len(cs) == 0 {
			break
		}
		after = next
	}
	// A write can also be rejected: one that moved an item's partition key
	// while the hub had the item under its old key. Its edge was told so.
	rejected := map[string]string{} // version -> reason, from the writers' feeds
	for _, e := range edges {
		for since := int64(0); ; {
			chs, next, err := e.r.ChangesWithOutcomes(ctx, "kv", since, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chs {
				if ch.Op == edge.OpOutcome && ch.Outcome == replica.OutcomeRejected {
					rejected[ch.Version] = ch.Reason
				}
			}
			if len(chs) == 0 {
				break
			}
			since = next
		}
	}
	for v := range acked {
		if reason, ok := rejected[v]; ok {
			if !strings.Contains(reason, "partition key") {
				t.Errorf("acknowledged write %s (edge e%d) rejected: %s", v, acked[v], reason)
			}
			continue
		}
		if _, ok := confirmed[v]; !ok && !inFeed[v] {
			t.Errorf("acknowledged write %s (edge e%d) is neither confirmed nor in the conflicts feed", v, acked[v])
		}
	}
	// Each edge has the hub's conflicts feed, every record as it is now.
	for _, e := range edges {
		eventually(t, 10*time.Second, func() error {
			if got, want := e.r.ConflictSeq(), c.hub.ConflictHead(); got != want {
				return fmt.Errorf("%s: conflicts stream at %d, hub at %d", e.name, got, want)
			}
			return nil
		})
		got := map[int64]string{}
		for _, rec := range edgeConflicts(t, e, "kv", "") {
			got[rec.ID] = rec.Status
		}
		if !maps.Equal(got, hubFeed) {
			t.Errorf("%s: conflicts feed %v, hub %v", e.name, got, hubFeed)
		}
	}
	// Each edge learnt one outcome per write.
	for i, e := range edges {
		outcomes := map[string]int{}
		for since := int64(0); ; {
			chs, next, err := e.r.ChangesWithOutcomes(ctx, "kv", since, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chs {
				if ch.Op == edge.OpOutcome {
					outcomes[ch.Version]++
				}
			}
			if len(chs) == 0 {
				break
			}
			since = next
		}
		if len(outcomes) != writes[i] {
			t.Errorf("%s: %d outcomes for %d writes", e.name, len(outcomes), writes[i])
		}
		for v, n := range outcomes {
			if n != 1 {
				t.Errorf("%s: %d outcomes for %s", e.name, n, v)
			}
		}
	}
	moved := 0 // items the hub ends with under their other partition key
	for k := range nKeys {
		if it, err := c.hub.Get(ctx, "kv", fmt.Sprintf("k%d", k)); err == nil && strings.HasPrefix(it.PK, "q-") {
			moved++
		}
	}
	t.Logf("%d writes acknowledged, %d versions confirmed, %d rejected, %d conflicts, %d items moved, hub at LSN %d",
		len(acked), len(confirmed), len(rejected), conflicts, moved, c.hub.Head())
}
