package hub_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// BenchmarkPush sequences pushes of 256 1 KiB documents from one node:
// creates, then replaces of items the hub has (each based on the item's
// current version: no conflicts). Durability normal: the writer's work, not
// the disk's.
func BenchmarkPush(b *testing.B) {
	for _, kind := range []string{"create", "replace"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			h := hub.New(hub.Config{Store: newStore(b, b.TempDir())})
			if err := h.Open(ctx); err != nil {
				b.Fatal(err)
			}
			defer h.Close(ctx)
			if _, _, err := h.PutContainer(ctx, replica.Container{Name: bench.Container, PartitionKey: bench.PartitionKey}); err != nil {
				b.Fatal(err)
			}
			const batch, items = 256, 4096
			seq := 0
			base := make([]string, items) // each item's current version
			push := func(op string, first int) {
				vs := make([]wire.Version, batch)
				for j := range vs {
					i := (first + j) % items
					seq++
					vs[j] = wire.Version{Container: bench.Container, ID: bench.DocID(i), Op: op, Version: fmt.Sprintf("n-%d", seq),
						Base: base[i], TS: 1, Body: bench.Doc(i, 1024)}
				}
				out, _, err := h.Push(ctx, "n", nil, vs)
				if err != nil {
					b.Fatal(err)
				}
				for j, o := range out {
					if o.Outcome != wire.OutcomeConfirmed {
						b.Fatalf("outcome %+v", o)
					}
					base[(first+j)%items] = vs[j].Version
				}
			}
			if kind == "replace" {
				for first := 0; first < items; first += batch {
					push(replica.OpCreate, first)
				}
			}
			b.SetBytes(batch * 1024)
			b.ResetTimer()
			for n := range b.N {
				if kind == "create" {
					vs := make([]wire.Version, batch)
					for j := range vs {
						seq++
						k := items + seq // an id no push used
						vs[j] = wire.Version{Container: bench.Container, ID: bench.DocID(k), Op: replica.OpCreate,
							Version: fmt.Sprintf("n-%d", seq), TS: 1, Body: bench.Doc(k, 1024)}
					}
					if _, _, err := h.Push(ctx, "n", nil, vs); err != nil {
						b.Fatal(err)
					}
					continue
				}
				push(replica.OpReplace, n*batch)
			}
		})
	}
}

// BenchmarkLogAfterScoped streams a hub log of 20,480 1 KiB documents to a
// scoped edge, page by page as a sync session does: "1% in scope" covers
// one container that holds every 100th document, "99% in scope" the other,
// "one partition key of 16" one tenant of the other, "all in scope" names
// both containers. Reported per LSN streamed past.
func BenchmarkLogAfterScoped(b *testing.B) {
	ctx := context.Background()
	h := hub.New(hub.Config{Store: newStore(b, b.TempDir())})
	if err := h.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	for _, name := range []string{"mine", "other"} {
		if _, _, err := h.PutContainer(ctx, replica.Container{Name: name, PartitionKey: bench.PartitionKey}); err != nil {
			b.Fatal(err)
		}
	}
	const docs, batch = 20480, 256
	oneKey := 0 // documents of "other" with partition key t03
	for first := 0; first < docs; first += batch {
		vs := make([]wire.Version, batch)
		for j := range vs {
			k := first + j
			c := "other"
			if k%100 == 0 {
				c = "mine"
			} else if k%16 == 3 {
				oneKey++
			}
			vs[j] = wire.Version{Container: c, ID: bench.DocID(k), Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", k+1), TS: 1, Body: bench.Doc(k, 1024)}
		}
		if _, _, err := h.Push(ctx, "n", nil, vs); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		scope []wire.ScopeEntry
		want  int
	}{
		{"1% in scope", []wire.ScopeEntry{{Container: "mine"}}, (docs + 99) / 100},
		{"99% in scope", []wire.ScopeEntry{{Container: "other"}}, docs - (docs+99)/100},
		{"one partition key of 16", []wire.ScopeEntry{{Container: "other", PartitionKeys: []string{"t03"}}}, oneKey},
		{"all in scope", []wire.ScopeEntry{{Container: "mine"}, {Container: "other"}}, docs},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				got := 0
				for after := int64(0); after < h.Head(); {
					out, covered, err := h.LogAfter(ctx, after, wire.MaxChangesFrame, wire.MaxChangesBytes, tc.scope, "e")
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range out {
						if len(c.Body) == 0 {
							b.Fatalf("LSN %d has no body", c.LSN)
						}
					}
					got += len(out)
					after = covered
				}
				if got != tc.want {
					b.Fatalf("streamed %d changes, want %d", got, tc.want)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*docs), "ns/lsn")
		})
	}
}
