package edge_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// The write benchmarks come in pairs: the replica through its Go API, and
// the raw-SQLite baseline inserting the same 1 KiB documents in the same run.
// `edgenode bench` runs the same comparison with latency percentiles.

func benchReplica(b *testing.B, durability string) *edge.Replica {
	r := edge.New(edge.Config{Dir: b.TempDir(), Durability: durability})
	if err := r.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	if _, _, err := r.PutContainer(context.Background(), replica.Container{Name: bench.Container, PartitionKey: bench.PartitionKey}); err != nil {
		b.Fatal(err)
	}
	return r
}

func docs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bench.Doc(i, 1024)
	}
	return out
}

func benchmarkCreate(b *testing.B, durability string, parallel bool) {
	r := benchReplica(b, durability)
	ds := docs(b.N)
	ctx := context.Background()
	var next atomic.Int64
	b.SetBytes(1024)
	b.ResetTimer()
	if !parallel {
		for i := range b.N {
			if _, err := r.Create(ctx, bench.Container, ds[i]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(16) // 16 x GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Create(ctx, bench.Container, ds[next.Add(1)-1]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchmarkRaw(b *testing.B, durability string, parallel bool) {
	db, err := bench.OpenRawSQLite(context.Background(), b.TempDir(), durability)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ds := docs(b.N)
	ctx := context.Background()
	var next atomic.Int64
	b.SetBytes(1024)
	b.ResetTimer()
	if !parallel {
		for i := range b.N {
			if err := db.Insert(ctx, bench.DocID(i), ds[i]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1) - 1)
			if err := db.Insert(ctx, bench.DocID(i), ds[i]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCreate_Full(b *testing.B)         { benchmarkCreate(b, sqlitestore.DurabilityFull, false) }
func BenchmarkRawInsert_Full(b *testing.B)      { benchmarkRaw(b, sqlitestore.DurabilityFull, false) }
func BenchmarkCreateParallel_Full(b *testing.B) { benchmarkCreate(b, sqlitestore.DurabilityFull, true) }
func BenchmarkRawParallel_Full(b *testing.B)    { benchmarkRaw(b, sqlitestore.DurabilityFull, true) }
func BenchmarkCreateParallel_Normal(b *testing.B) {
	benchmarkCreate(b, sqlitestore.DurabilityNormal, true)
}
func BenchmarkRawInsert_Normal(b *testing.B) { benchmarkRaw(b, sqlitestore.DurabilityNormal, false) }
func BenchmarkCreate_Normal(b *testing.B)    { benchmarkCreate(b, sqlitestore.DurabilityNormal, false) }

func BenchmarkGet(b *testing.B) {
	r := benchReplica(b, sqlitestore.DurabilityNormal)
	ctx := context.Background()
	for i, d := range docs(1000) {
		if _, err := r.Create(ctx, bench.Container, d); err != nil {
			b.Fatal(i, err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.Get(ctx, bench.Container, bench.DocID(i%1000), edge.ReadOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkReplace replaces existing items, 1,000 of them in turn, one
// writer (the partition key index stays as it is).
func benchmarkReplace(b *testing.B, durability string) {
	r := benchReplica(b, durability)
	ctx := context.Background()
	const items = 1000
	ds := docs(items)
	for i := range items {
		if _, err := r.Create(ctx, bench.Container, ds[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(1024)
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := r.Upsert(ctx, bench.Container, bench.DocID(i%items), ds[i%items], edge.WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplace_Full(b *testing.B)   { benchmarkReplace(b, sqlitestore.DurabilityFull) }
func BenchmarkReplace_Normal(b *testing.B) { benchmarkReplace(b, sqlitestore.DurabilityNormal) }

// BenchmarkApplyOutcomes settles own writes with the hub's outcomes, a
// frame of 256 (what a sync session does for every push it gets answered):
// each write leaves the outbox, its item's counters move, and the local
// feed gets an outcome record. Durability normal: the writer's work, not
// the disk's. Reported per outcome.
func BenchmarkApplyOutcomes(b *testing.B) {
	r := benchReplica(b, sqlitestore.DurabilityNormal)
	ctx := context.Background()
	const frame = 256
	var lsn int64
	outcomes := make([]wire.Outcome, frame)
	b.SetBytes(1024 * frame)
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		for i := range frame {
			k := n*frame + i
			it, err := r.Create(ctx, bench.Container, bench.Doc(k, 1024))
			if err != nil {
				b.Fatal(err)
			}
			lsn++
			outcomes[i] = wire.Outcome{Version: it.Version, Container: bench.Container, ID: it.ID, Outcome: wire.OutcomeConfirmed, LSN: lsn, CRTS: 1}
		}
		b.StartTimer()
		if err := r.ApplyOutcomes(ctx, outcomes, lsn); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := r.Pending(); got != 0 {
		b.Fatalf("%d writes still pending", got)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frame), "ns/outcome")
}
