package query

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// A query text is parsed once and its parse is shared; the cache stays
// within maxCachedQueries; a query that fails is not kept, nor a long one.
func TestParseCached(t *testing.T) {
	a, err := parseCached(`SELECT * FROM c WHERE c.x = @x`, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseCached(`SELECT * FROM c WHERE c.x = @x`, Limits{})
	if err != nil || a != b {
		t.Fatalf("second parse = %p, %v; want the first (%p)", b, err, a)
	}
	if _, err := parseCached(`SELECT * FROM c WHERE c.x = @x`, Limits{MaxQueryLength: 10}); err == nil {
		t.Fatal("a parse under other limits came from the cache")
	}
	if _, err := parseCached(`SELECT FROM`, Limits{}); err == nil {
		t.Fatal("a bad query parsed")
	}
	for i := range maxCachedQueries + 10 {
		if _, err := parseCached(fmt.Sprintf(`SELECT VALUE %d FROM c`, i), Limits{}); err != nil {
			t.Fatal(err)
		}
		parsed.mu.Lock()
		n := len(parsed.m)
		_, bad := parsed.m[cacheKey{`SELECT FROM`, DefaultMaxQueryLength, DefaultMaxDepth}]
		parsed.mu.Unlock()
		if n > maxCachedQueries || bad {
			t.Fatalf("cache holds %d queries (a bad one: %v), want at most %d and no bad one", n, bad, maxCachedQueries)
		}
	}
}

// Runs of one cached query with different parameters, at once, each get
// their own result (run with -race).
func TestParseCached_ConcurrentRuns(t *testing.T) {
	docs := []string{`{"id":"a","n":1}`, `{"id":"b","n":2}`, `{"id":"c","n":3}`}
	src := func(ctx context.Context, fn func([]byte) error) error {
		for _, d := range docs {
			if err := fn([]byte(d)); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*50)
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				p, err := Execute(context.Background(), Request{Query: `SELECT VALUE c.id FROM c WHERE c.n = @n`,
					Parameters: []Parameter{{Name: "@n", Value: json.RawMessage(fmt.Sprint(w + 1))}}}, src, Options{})
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf(`"%c"`, 'a'+w); len(p.Documents) != 1 || string(p.Documents[0]) != want {
					errs <- fmt.Errorf("@n=%d: %s, want [%s]", w+1, p.Documents, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
