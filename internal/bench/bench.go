// Package bench holds what the write benchmarks share: the documents they
// write, the raw-SQLite baseline they are compared against, and latency
// summaries. The `edgenode bench` command and the Go benchmarks both use it,
// so the figures in the README and `go test -bench` measure the same thing.
package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// Container is the container the benchmarks write to, with its partition key.
const (
	Container    = "bench"
	PartitionKey = "/tenant"
)

// Tenants is how many partition key values the documents of Doc spread over.
const Tenants = 16

// Tenant is the partition key value of document number i.
func Tenant(i int) string { return fmt.Sprintf("t%02d", i%Tenants) }

// Doc returns document number i of about size bytes: an id, a partition key
// out of Tenants, a few typed fields and a padding string.
func Doc(i, size int) []byte {
	head := fmt.Sprintf(`{"id":"d%09d","tenant":"%s","price":%d.%02d,"qty":%d,"tags":["a","b"],"note":"`, i, Tenant(i), i%1000, i%100, i%7)
	pad := size - len(head) - 2
	if pad < 0 {
		pad = 0
	}
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// Summary describes a run of timed operations.
type Summary struct {
	Name    string
	Ops     int
	Elapsed time.Duration
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
	Lats    []time.Duration // every operation's latency, sorted
}

// Merge pools two runs of the same operation (e.g. rounds interleaved with a
// baseline): latencies together, time added.
func Merge(a, b Summary) Summary {
	if a.Ops == 0 {
		return b
	}
	lats := append(slices.Clone(a.Lats), b.Lats...)
	return Summarize(a.Name, lats, a.Elapsed+b.Elapsed)
}

// OpsPerSec is the run's throughput.
func (s Summary) OpsPerSec() float64 { return float64(s.Ops) / s.Elapsed.Seconds() }

func (s Summary) String() string {
	return fmt.Sprintf("%-34s %8d ops %9.0f ops/s  p50 %8s  p99 %8s  max %8s",
		s.Name, s.Ops, s.OpsPerSec(), round(s.P50), round(s.P99), round(s.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d > time.Microsecond:
		return d.Round(time.Microsecond / 10)
	}
	return d
}

// Summarize computes percentiles of lats (which it sorts).
func Summarize(name string, lats []time.Duration, elapsed time.Duration) Summary {
	slices.Sort(lats)
	s := Summary{Name: name, Ops: len(lats), Elapsed: elapsed, Lats: lats}
	if len(lats) == 0 {
		return s
	}
	s.P50 = lats[len(lats)*50/100]
	s.P99 = lats[min(len(lats)-1, len(lats)*99/100)]
	s.Max = lats[len(lats)-1]
	return s
}

// Settle collects the heap before a measured phase, as testing.B does before
// each benchmark, so that the phase does not pay for the one before it.
// Without it, the sync run's first second ran at half speed: the edge's
// local writes had left a live heap of about 100 MB, so with GOGC=400 the
// next collection was due only at about 500 MB, and until then every
// allocation of the sync took fresh memory from the kernel (50,000 page
// faults a second) instead of reusing the heap's.
func Settle() { runtime.GC() }

// Run calls op(i) for i in [0, n) from clients goroutines and times each call.
// It settles the heap first.
func Run(name string, n, clients int, op func(i int) error) (Summary, error) {
	lats := make([]time.Duration, n)
	Settle()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s: op %d: %w", name, i, err) })
					return
				}
				lats[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return Summary{}, firstErr
	}
	return Summarize(name, lats, elapsed), nil
}

// RawSQLite is the baseline: the same documents inserted into a plain
// two-column table (id, body), one autocommit INSERT each, through the same
// driver, in WAL mode with SQLite's own durable setting (synchronous=FULL:
// fsync at every commit) and its default automatic checkpoints.
type RawSQLite struct {
	db   *sql.DB
	stmt *sql.Stmt
}

// OpenRawSQLite creates the baseline database in dir. durability "normal"
// selects synchronous=NORMAL instead.
func OpenRawSQLite(ctx context.Context, dir, durability string) (*RawSQLite, error) {
	sync := "FULL"
	if durability == sqlitestore.DurabilityNormal {
		sync = "NORMAL"
	}
	dsn := "file:" + filepath.Join(dir, "raw.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE docs (id TEXT PRIMARY KEY, body BLOB NOT NULL)`); err != nil {
		db.Close()
		return nil, err
	}
	stmt, err := db.PrepareContext(ctx, `INSERT INTO docs (id, body) VALUES (?, ?)`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &RawSQLite{db: db, stmt: stmt}, nil
}

// Insert inserts one document in its own transaction.
func (r *RawSQLite) Insert(ctx context.Context, id string, body []byte) error {
	_, err := r.stmt.ExecContext(ctx, id, body)
	return err
}

// Close closes the baseline database.
func (r *RawSQLite) Close() error { return errors.Join(r.stmt.Close(), r.db.Close()) }

// DocID is the id Doc(i, ...) carries.
func DocID(i int) string { return fmt.Sprintf("d%09d", i) }
