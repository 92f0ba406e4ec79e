package migrate

import (
	"strings"
	"testing"
)

// TestChecksum_Add: rows that differ in any way (a value moved across a
// column boundary, NULL against empty bytes, a type, the order of rows)
// hash differently; the same rows hash the same.
func TestChecksum_Add(t *testing.T) {
	sum := func(rows ...[]any) string {
		t.Helper()
		c := newChecksum()
		for _, r := range rows {
			if err := c.add(r); err != nil {
				t.Fatal(err)
			}
		}
		return c.sum()
	}
	base := sum([]any{"ab", "c"}, []any{int64(1), []byte(nil), true})
	if again := sum([]any{"ab", "c"}, []any{int64(1), []byte(nil), true}); again != base {
		t.Fatalf("the same rows: %s, then %s", base, again)
	}
	tests := []struct {
		name string
		rows [][]any
	}{
		{"boundary", [][]any{{"a", "bc"}, {int64(1), []byte(nil), true}}},
		{"empty bytes for NULL", [][]any{{"ab", "c"}, {int64(1), []byte{}, true}}},
		{"false", [][]any{{"ab", "c"}, {int64(1), []byte(nil), false}}},
		{"integer for boolean", [][]any{{"ab", "c"}, {int64(1), []byte(nil), int64(1)}}},
		{"text for integer", [][]any{{"ab", "c"}, {"1", []byte(nil), true}}},
		{"bytes for text", [][]any{{[]byte("ab"), "c"}, {int64(1), []byte(nil), true}}},
		{"order", [][]any{{int64(1), []byte(nil), true}, {"ab", "c"}}},
		{"row missing", [][]any{{"ab", "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sum(tt.rows...); got == base {
				t.Fatalf("sum(%v) = %s, the same as the original rows'", tt.rows, got)
			}
		})
	}
	if err := newChecksum().add([]any{3.5}); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Fatalf("add(float64) = %v, want an error naming the type", err)
	}
}
