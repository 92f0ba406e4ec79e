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
