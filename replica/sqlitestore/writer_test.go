package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// BeforeCommit runs inside each group's transaction, after its jobs: what it
// writes commits with them, and its failure fails the whole group (every
// job reports it, nothing of the group is kept) without stopping the writer.
func TestWriter_BeforeCommit(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "w.db"), Options{Durability: DurabilityNormal}, walTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var (
		w      *Writer
		fail   bool
		groups int
	)
	boom := errors.New("boom")
	w = NewWriter(db, WriterConfig{BeforeCommit: func(ctx context.Context) error {
		groups++ // on the writer goroutine only
		if fail {
			return boom
		}
		_, err := w.Exec(ctx, "INSERT INTO t (k, body) VALUES ('hook', x'00')")
		return Wrote("hook", err)
	}})
	if err := w.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	count := func(k string) int {
		var n int
		if err := db.Read.QueryRow("SELECT count(*) FROM t WHERE k = ?", k).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func(k string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := w.Exec(ctx, "INSERT INTO t (k, body) VALUES (?, x'00')", k)
			return Wrote("insert", err)
		}
	}
	if err := w.Do(ctx, insert("job"), nil); err != nil {
		t.Fatal(err)
	}
	if j, h := count("job"), count("hook"); j != 1 || h != 1 {
		t.Fatalf("after one group: %d job rows, %d hook rows, want 1 and 1", j, h)
	}
	// A failing hook fails every job of its group, here several queued
	// before the writer takes them.
	if err := w.Do(ctx, func(ctx context.Context) error { fail = true; return nil }, nil); !errors.Is(err, boom) {
		t.Fatalf("the job that turns the hook's failure on: %v, want the hook's error", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = w.Do(ctx, insert("doomed"), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("job %d: %v, want the hook's error", i, err)
		}
	}
	if n := count("doomed"); n != 0 {
		t.Fatalf("%d rows of failed groups kept", n)
	}
	if err := w.Do(ctx, func(ctx context.Context) error { fail = false; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Do(ctx, insert("job"), nil); err != nil {
		t.Fatal(err)
	}
	if j, h := count("job"), count("hook"); j != 2 || h != 3 {
		t.Fatalf("after recovery: %d job rows, %d hook rows, want 2 and 3", j, h)
	}
	if groups < 4 {
		t.Fatalf("the hook ran %d times, want one per group", groups)
	}
}
