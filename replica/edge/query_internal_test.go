package edge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// A query gives way to a write transaction that is open (scans and index
// scans alike): it goes on once the transaction ends, or once it has waited
// maxWriteYield for it.
func TestReplica_QueryYieldsToWriter(t *testing.T) {
	ctx := context.Background()
	r := New(Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n"}}}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"d%d","pk":"p","n":%d}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	old := maxWriteYield
	defer func() { maxWriteYield = old }()
	for _, text := range []string{`SELECT VALUE c.id FROM c`, `SELECT VALUE c.id FROM c WHERE c.n = 1`} {
		maxWriteYield = time.Minute
		release, began := make(chan struct{}), make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		defer free() // a failure below must not leave the writer blocked
		wrote := make(chan error, 1)
		go func() {
			wrote <- r.submit(ctx, func(ctx context.Context) error {
				close(began)
				<-release
				return nil
			}, nil)
		}()
		<-began
		done := make(chan error, 1)
		go func() {
			_, err := r.Query(ctx, "c", query.Request{Query: text}, "", query.Options{Timeout: time.Minute})
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("%s: returned (%v) while a write transaction was open", text, err)
		case <-time.After(100 * time.Millisecond):
		}
		free()
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting after the write transaction ended", text)
		}
	}

	// A transaction open longer than maxWriteYield holds a query up for
	// maxWriteYield only.
	maxWriteYield = 20 * time.Millisecond
	release, began := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	wrote := make(chan error, 1)
	go func() {
		wrote <- r.submit(ctx, func(ctx context.Context) error {
			close(began)
			<-release
			return nil
		}, nil)
	}()
	<-began
	start := time.Now()
	if _, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("query took %s behind a long transaction, want about %s", took, maxWriteYield)
	}
	free()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// A query gives way to a local write from the moment its caller starts it
// until the caller has its outcome, not only while the writer's
// transaction is open: here the write waits in the writer's queue behind
// another transaction, and queries (scans and index scans alike) wait for
// it even though they no longer wait for transactions.
func TestReplica_QueryWaitsForLocalWrite(t *testing.T) {
	ctx := context.Background()
	r := New(Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(ctx) }) // after the frees registered below
	def := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n"}}}
	if _, _, err := r.PutContainer(ctx, def); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.Create(ctx, "c", fmt.Appendf(nil, `{"id":"d%d","pk":"p","n":%d}`, i, i)); err != nil {
			t.Fatal(err)
		}
	}
	oldYield, oldWait := maxWriteYield, maxWriteWait
	defer func() { maxWriteYield, maxWriteWait = oldYield, oldWait }()
	maxWriteYield = time.Nanosecond // transactions alone hold no query up
	// block holds the writer in a transaction until release is closed, and
	// queues a local write behind it; it returns the write's outcome.
	block := func(t *testing.T) (free func(), wrote chan error) {
		release, began := make(chan struct{}), make(chan struct{})
		var once sync.Once
		free = func() { once.Do(func() { close(release) }) }
		t.Cleanup(free) // a failure must not leave the writer blocked
		go func() {
			r.submit(ctx, func(ctx context.Context) error {
				close(began)
				<-release
				return nil
			}, nil)
		}()
		<-began
		wrote = make(chan error, 1)
		go func() {
			_, _, err := r.Upsert(ctx, "c", "", []byte(`{"id":"w","pk":"p","n":9}`), WriteOptions{})
			wrote <- err
		}()
		for deadline := time.Now().Add(10 * time.Second); r.gate.n.Load() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the write never started")
			}
		}
		return free, wrote
	}
	for _, text := range []string{`SELECT VALUE c.id FROM c`, `SELECT VALUE c.id FROM c WHERE c.n = 1`} {
		maxWriteWait = time.Minute
		free, wrote := block(t)
		done := make(chan error, 1)
		go func() {
			_, err := r.Query(ctx, "c", query.Request{Query: text}, "", query.Options{Timeout: time.Minute})
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("%s: returned (%v) while a local write was in flight", text, err)
		case <-time.After(100 * time.Millisecond):
		}
		free()
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting after the write returned", text)
		}
	}

	// Writes in flight without a pause hold a query up for maxWriteWait
	// only.
	maxWriteWait = 20 * time.Millisecond
	free, wrote := block(t)
	start := time.Now()
	if _, err := r.Query(ctx, "c", query.Request{Query: `SELECT VALUE c.id FROM c`}, "", query.Options{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("query took %s behind a write in flight, want about %s", took, maxWriteWait)
	}
	free()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// The gate stays closed until the last of overlapping writes leaves, and
// opens again for the next one.
func TestWriteGate_Overlapping(t *testing.T) {
	var g writeGate
	waited := func() time.Duration {
		start := time.Now()
		g.wait(50 * time.Millisecond)
		return time.Since(start)
	}
	if got := waited(); got > 40*time.Millisecond {
		t.Fatalf("wait on an open gate took %s, want at once", got)
	}
	g.enter()
	g.enter()
	g.leave()
	if got := waited(); got < 40*time.Millisecond {
		t.Fatalf("wait with one write in flight took %s, want its bound, 50ms", got)
	}
	g.leave()
	if got := waited(); got > 40*time.Millisecond {
		t.Fatalf("wait after the last write left took %s, want at once", got)
	}
	g.enter()
	done := make(chan time.Duration, 1)
	go func() {
		done <- waited()
	}()
	time.Sleep(5 * time.Millisecond)
	g.leave()
	if got := <-done; got > 40*time.Millisecond {
		t.Fatalf("wait took %s though the write left after 5ms", got)
	}
}
