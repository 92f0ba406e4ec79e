package sqlitestore

import (
	"strings"

	"github.com/edgesync/edgesync/replica/query"
)

// The query index of an edge and of the SQLite hub is one table, idx
// (container, path, t, v, id), kept by value: t is the value's type rank in
// the order of ORDER BY (1 null, 2 boolean, 3 number, 4 string), v the value
// as SQLite compares it within its rank.

// IndexWhere is the condition on idx x of an index scan of container, and
// its arguments.
func IndexWhere(container string, s *query.IndexScan) (string, []any) {
	var b strings.Builder
	b.WriteString(`x.container = ? AND x.path = ?`)
	args := []any{container, s.Path.Path}
	if s.Values != nil {
		if len(s.Values) == 0 {
			b.WriteString(` AND 0`)
			return b.String(), args
		}
		b.WriteString(` AND (`)
		for i, v := range s.Values {
			if i > 0 {
				b.WriteString(` OR `)
			}
			t, sv := IndexValue(v)
			b.WriteString(`(x.t = ? AND x.v = ?)`)
			args = append(args, t, sv)
		}
		b.WriteString(`)`)
		return b.String(), args
	}
	for _, bd := range []struct {
		b      *query.Bound
		op, eq string
	}{{s.Lo, ">", ">="}, {s.Hi, "<", "<="}} {
		if bd.b == nil {
			continue
		}
		t, sv := IndexValue(bd.b.Value)
		op := bd.op
		if bd.b.Inclusive {
			op = bd.eq
		}
		b.WriteString(` AND x.t = ? AND x.v ` + op + ` ?`)
		args = append(args, t, sv)
	}
	return b.String(), args
}

// IndexValue is a value's type rank and its value as idx stores it; a value
// idx does not hold (an array, an object) is rank 0.
func IndexValue(v any) (int64, any) {
	switch v := v.(type) {
	case nil:
		return 1, int64(0)
	case bool:
		if v {
			return 2, int64(1)
		}
		return 2, int64(0)
	case float64:
		return 3, v
	case string:
		return 4, v
	}
	return 0, nil
}
