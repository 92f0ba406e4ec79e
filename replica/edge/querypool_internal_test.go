package edge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// The pool runs at most as many queries at once as it has workers; the
// others wait their turn, and every one runs.
func TestQueryPool_Bounds(t *testing.T) {
	var p queryPool
	p.init(2)
	defer p.close()
	var running, peak atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	const calls = 6
	var ran atomic.Int64
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.run(context.Background(), func() {
				n := running.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				<-release
				running.Add(-1)
				ran.Add(1)
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); running.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("running=%d after 10s, want 2", running.Load())
		}
	}
	time.Sleep(20 * time.Millisecond) // room for a third to start, were the bound not kept
	close(release)
	wg.Wait()
	if got, want := peak.Load(), int64(2); got != want {
		t.Fatalf("peak concurrent queries=%d, want %d", got, want)
	}
	if got := ran.Load(); got != calls {
		t.Fatalf("ran=%d, want %d", got, calls)
	}
}

// A panicking query panics its caller with the value and the worker's
// stack; the worker goes on serving the next query.
func TestQueryPool_PanicRecovers(t *testing.T) {
	var p queryPool
	p.init(1)
	defer p.close()
	boom := errors.New("boom")
	func() {
		defer func() {
			v := recover()
			qp, ok := v.(*queryPanic)
			if !ok {
				t.Fatalf("recover()=%#v, want a *queryPanic", v)
			}
			if !errors.Is(qp, boom) || len(qp.Stack) == 0 {
				t.Fatalf("panic %v with %d bytes of stack, want boom and the worker's stack", qp.Value, len(qp.Stack))
			}
		}()
		p.run(context.Background(), func() { panic(boom) })
		t.Fatal("run returned after a panic in the query")
	}()
	done := make(chan error, 1)
	ran := false
	go func() { done <- p.run(context.Background(), func() { ran = true }) }()
	select {
	case err := <-done:
		if err != nil || !ran {
			t.Fatalf("run after a panic: err=%v ran=%v, want nil true", err, ran)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not serve a query after a panic")
	}
}

// A caller waiting for a busy pool gives up when its context ends, and
// every call fails with ErrClosed once the pool is closed.
func TestQueryPool_WaitEnds(t *testing.T) {
	var p queryPool
	p.init(1)
	release, began := make(chan struct{}), make(chan struct{})
	go p.run(context.Background(), func() { close(began); <-release })
	<-began
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.run(ctx, func() { t.Error("ran a query past its context") }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run on a busy pool=%v, want %v", err, context.DeadlineExceeded)
	}
	close(release)
	p.close()
	if err := p.run(context.Background(), func() { t.Error("ran a query on a closed pool") }); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("run after close=%v, want %v", err, replica.ErrClosed)
	}
}

// Queries through a replica run on the pool, whose threads start at the
// first query, and fail with ErrClosed once the replica is closed.
func TestReplica_QueryWorkers(t *testing.T) {
	ctx := context.Background()
	r := openOneWorker(t)
	if _, err := r.Create(ctx, "c", []byte(`{"id":"a","pk":"p"}`)); err != nil {
		t.Fatal(err)
	}
	if r.qpool.started.Load() {
		t.Fatal("query workers started before the first query")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: time.Minute})
			if err != nil || len(p.Documents) != 1 {
				t.Errorf("Query: %d documents, err %v; want 1, nil", len(p.Documents), err)
			}
		}()
	}
	wg.Wait()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: time.Minute}); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("Query after Close=%v, want %v", err, replica.ErrClosed)
	}
}

// A query waiting for a busy worker stops at its time limit with
// query.ErrTimeout.
func TestReplica_QueryWaitForWorkerTimesOut(t *testing.T) {
	ctx := context.Background()
	r := openOneWorker(t)
	// A write just made: queries run on the workers (writesQuiet).
	if _, err := r.Create(ctx, "c", []byte(`{"id":"a","pk":"p"}`)); err != nil {
		t.Fatal(err)
	}
	release, began := make(chan struct{}), make(chan struct{})
	go r.qpool.run(ctx, func() { close(began); <-release })
	<-began
	defer close(release)
	_, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: 20 * time.Millisecond})
	if !errors.Is(err, query.ErrTimeout) {
		t.Fatalf("Query with every worker busy=%v, want %v", err, query.ErrTimeout)
	}
}

// Queries run on the workers only while local writes are being made: with
// none for writesQuiet, a query runs on its caller and starts no worker;
// right after a write, it runs on a worker.
func TestReplica_QueryWorkersOnlyBesideWrites(t *testing.T) {
	ctx := context.Background()
	r := openOneWorker(t)
	q := func() {
		t.Helper()
		if _, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	q()
	if r.qpool.started.Load() {
		t.Fatal("a query with no local write ever made started the workers")
	}
	if _, err := r.Create(ctx, "c", []byte(`{"id":"a","pk":"p"}`)); err != nil {
		t.Fatal(err)
	}
	q()
	if !r.qpool.started.Load() {
		t.Fatal("a query right after a local write did not run on the workers")
	}
	// The gate's clock, moved back past writesQuiet: queries run on their
	// callers again (a worker busy for good would make one wait otherwise).
	r.gate.ended.Add(-int64(2 * writesQuiet))
	release, began := make(chan struct{}), make(chan struct{})
	go r.qpool.run(ctx, func() { close(began); <-release })
	<-began
	defer close(release)
	q()
}

// openOneWorker opens a replica with one query worker and a container "c",
// closed when the test ends.
func openOneWorker(t *testing.T) *Replica {
	t.Helper()
	ctx := context.Background()
	r := New(Config{Dir: t.TempDir(), Durability: "normal", QueryWorkers: 1})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	return r
}
