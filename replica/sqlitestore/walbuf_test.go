package sqlitestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

var walTestSchema = []string{`CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, body BLOB NOT NULL); CREATE INDEX t_k ON t (k);`}

func openWALTest(t *testing.T, path string, durability string) (*DB, *Writer, func()) {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, path, Options{Durability: durability}, walTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(db, WriterConfig{})
	if err := w.Open(ctx); err != nil {
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			if err := errors.Join(w.Close(ctx), db.Close()); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(closeAll)
	return db, w, closeAll
}

// insertRows inserts n rows of size bytes in one transaction, keys spread
// over the index so that the commit dirties many pages.
func insertRows(ctx context.Context, w *Writer, from, n, size int) error {
	body := bytes.Repeat([]byte("x"), size)
	return w.Do(ctx, func(ctx context.Context) error {
		for i := from; i < from+n; i++ {
			if _, err := w.Exec(ctx, "INSERT INTO t (k, body) VALUES (?, ?)", fmt.Sprintf("k%02d-%07d", i%16, i), body); err != nil {
				return Wrote("insert", err)
			}
		}
		return nil
	}, nil)
}

func checkRows(t *testing.T, db *DB, want int) {
	t.Helper()
	var n int
	if err := db.Read.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Fatalf("a reader sees %d rows, want %d", n, want)
	}
	var ok string
	if err := db.Read.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}

// A commit's WAL frames reach the file in one write instead of two per
// frame, and only where every commit syncs.
func TestWALBuf_GathersACommit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		durability string
		gathered   bool
	}{{DurabilityFull, true}, {DurabilityNormal, false}} {
		t.Run(tc.durability, func(t *testing.T) {
			db, w, _ := openWALTest(t, filepath.Join(t.TempDir(), "w.db"), tc.durability)
			if err := insertRows(ctx, w, 0, 100, 1000); err != nil { // the tables' first pages
				t.Fatal(err)
			}
			g0, w0 := walGathered.Load(), walWritten.Load()
			if err := insertRows(ctx, w, 100, 40, 1000); err != nil {
				t.Fatal(err)
			}
			gathered, written := walGathered.Load()-g0, walWritten.Load()-w0
			if !tc.gathered {
				if gathered != 0 || written != 0 {
					t.Fatalf("durability %s: %d writes gathered, %d made; want the unix VFS", tc.durability, gathered, written)
				}
			} else if gathered < 20 || written != 1 {
				// 40 rows of 1 KB and their index entries: at least ten
				// frames, two writes each.
				t.Fatalf("%d writes gathered into %d; want at least 20 into 1", gathered, written)
			}
			checkRows(t, db, 140)
		})
	}
}

// Every commit is in the file before it is published: readers on other
// connections see each one as soon as it returns.
func TestWALBuf_ReadersSeeEveryCommit(t *testing.T) {
	ctx := context.Background()
	db, w, _ := openWALTest(t, filepath.Join(t.TempDir(), "w.db"), DurabilityFull)
	for i := range 50 {
		if err := insertRows(ctx, w, i*7, 7, 900); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Read.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != (i+1)*7 {
			t.Fatalf("after commit %d a reader sees %d rows, want %d", i, n, (i+1)*7)
		}
	}
	checkRows(t, db, 350)
}

// Concurrent group commits, and reads at the same time.
func TestWALBuf_Concurrent(t *testing.T) {
	ctx := context.Background()
	db, w, _ := openWALTest(t, filepath.Join(t.TempDir(), "w.db"), DurabilityFull)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for c := range 32 {
		wg.Go(func() {
			for i := range 50 {
				if err := insertRows(ctx, w, c*1000+i, 1, 1000); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			last := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				var sum int64
				if err := db.Read.QueryRow("SELECT count(*), coalesce(sum(length(body)), 0) FROM t").Scan(&n, &sum); err != nil {
					errs <- err
					return
				}
				if n < last || sum != int64(n)*1000 {
					errs <- fmt.Errorf("a reader saw %d rows of %d bytes after %d rows", n, sum, last)
					return
				}
				last = n
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkRows(t, db, 32*50)
}

// A transaction larger than the page cache spills frames before its commit
// and reads them back, and one larger than walBufMax writes in several
// pieces; a rolled back one leaves frames past the WAL's end that the next
// commit overwrites. All of it survives a reopen intact.
func TestWALBuf_LargeAndRolledBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	db, w, closeDB := openWALTest(t, path, DurabilityFull)
	if err := w.Do(ctx, func(ctx context.Context) error {
		_, err := w.Exec(ctx, "PRAGMA cache_size = 64")
		return err
	}, nil); err != nil {
		t.Fatal(err)
	}
	const big = 6000 // rows of 1 KB: 6 MB, past walBufMax and the cache
	if err := insertRows(ctx, w, 0, big, 1000); err != nil {
		t.Fatal(err)
	}
	checkRows(t, db, big)
	errRollback := fmt.Errorf("roll back")
	err := w.Do(ctx, func(ctx context.Context) error {
		body := bytes.Repeat([]byte("y"), 1000)
		for i := range 3000 {
			if _, err := w.Exec(ctx, "INSERT INTO t (k, body) VALUES (?, ?)", fmt.Sprintf("r%07d", i), body); err != nil {
				return Wrote("insert", err)
			}
		}
		return Wrote("test", errRollback)
	}, nil)
	if err == nil {
		t.Fatal("the job that fails after writing committed")
	}
	checkRows(t, db, big)
	if err := insertRows(ctx, w, big, 500, 1000); err != nil {
		t.Fatal(err)
	}
	checkRows(t, db, big+500)

	closeDB()
	db2, _, _ := openWALTest(t, path, DurabilityFull)
	checkRows(t, db2, big+500)
}
