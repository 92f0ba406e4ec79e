package query_test

import (
	"context"
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/query/querytest"
)

// FuzzParse feeds the parser arbitrary text: it must never panic, a bad
// query must be an *Error whose column lies within the text, and a query
// that parses must run over the test documents within its limits.
func FuzzParse(f *testing.F) {
	for _, tc := range querytest.Cases {
		f.Add(tc.Query)
	}
	for _, s := range []string{
		`SELECT * FROM c WHERE`, `SELECT VALUE "\ud83d\ude00"`, `SELECT VALUE "\ud83d"`, `SELECT c.a.b[0]["x"] FROM c`,
		`SELECT VALUE {"a": [1, {"b": c.x ?? null}]} FROM c`, `SELECT TOP @n * FROM c ORDER BY c.a DESC, c.b`,
		`SELECT VALUE 1e309`, `SELECT VALUE .5`, `SELECT VALUE c.x ? 1 : c.y ? 2 : 3 FROM c`, "SELECT -- x\n1",
	} {
		f.Add(s)
	}
	src, _ := products(f)
	f.Fuzz(func(t *testing.T, text string) {
		q, err := query.Parse(text)
		if err != nil {
			var qe *query.Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) = %v, want a *query.Error", text, err)
			}
			if qe.Column < 0 || qe.Column > utf8.RuneCountInString(text)+1 {
				t.Fatalf("Parse(%q): column %d outside the text", text, qe.Column)
			}
			return
		}
		if q == nil {
			t.Fatalf("Parse(%q) = nil, nil", text)
		}
		_, err = query.Execute(context.Background(), query.Request{Query: text, Limit: 50}, src, query.Options{Timeout: time.Second, MaxHeldBytes: 1 << 20})
		if err != nil && !errors.Is(err, query.ErrBadQuery) && !errors.Is(err, query.ErrTimeout) && !errors.Is(err, query.ErrTooLarge) {
			t.Fatalf("Execute(%q): %v", text, err)
		}
	})
}
