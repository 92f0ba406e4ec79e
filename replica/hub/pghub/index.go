package pghub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
)

// syncIndexPathsSQL adds to idx_paths the paths of the indexing policies
// of containers that have none listed (defined before the hub kept
// indexes, or copied by cloudhub migrate), not yet ready.
const syncIndexPathsSQL = `INSERT INTO idx_paths (container, ord, path, names)
	SELECT c.name, p.ord - 1, p.path, ARRAY(SELECT replace(replace(u.e, '~1', '/'), '~0', '~')
		FROM unnest(string_to_array(substr(p.path, 2), '/')) WITH ORDINALITY AS u(e, i) ORDER BY u.i)
	FROM containers c, jsonb_array_elements_text(c.indexing::jsonb -> 'paths') WITH ORDINALITY AS p(path, ord)
	WHERE c.indexing <> '' AND NOT EXISTS (SELECT 1 FROM idx_paths x WHERE x.container = c.name)
	ON CONFLICT DO NOTHING`

// setIndexPaths keeps the statements that make idx_paths list the paths
// of a container's indexing policy (JSON, "" for none): paths no longer
// listed lose their entries, new ones are added not yet ready.
func (t *tx) setIndexPaths(name, indexing string) error {
	paths := []string{}
	if indexing != "" {
		var p replica.IndexingPolicy
		if err := json.Unmarshal([]byte(indexing), &p); err != nil {
			return fmt.Errorf("container %s indexing policy: %w", name, err)
		}
		paths = append(paths, p.Paths...)
	}
	seg := t.top()
	seg.stmt(`DELETE FROM idx WHERE container = $1 AND NOT (path = ANY($2::text[]))`, name, paths)
	seg.stmt(`DELETE FROM idx_paths WHERE container = $1 AND NOT (path = ANY($2::text[]))`, name, paths)
	for i, path := range paths {
		names, err := replica.IndexPathNames(path)
		if err != nil {
			return fmt.Errorf("container %s index path %q: %w", name, path, err)
		}
		seg.stmt(`INSERT INTO idx_paths (container, ord, path, names) VALUES ($1, $2, $3, $4)
			ON CONFLICT (container, path) DO UPDATE SET ord = excluded.ord`, name, i, path, names)
	}
	seg.stmt(followPathsSQL)
	return nil
}

// followPathsSQL makes the index triggers exist while idx_paths lists a
// path, and only then; it runs last in every transaction that changes
// idx_paths (see the fifth migration).
const followPathsSQL = `SELECT idx_triggers_follow_paths()`

// BuildIndex indexes up to limit items for the paths not yet ready. Each
// item row is locked (FOR SHARE) while its entries are made from its
// current version: a write of the item on another hub of the tier waits
// for this transaction, or this one indexes what that write committed.
func (t *tx) BuildIndex(ctx context.Context, container, after string, limit int) (string, int, error) {
	var last *string
	var n int
	if _, err := t.row(ctx, "build index", `SELECT max(id), count(*) FROM (
			SELECT id FROM items WHERE container = $1 AND id > $2 ORDER BY id LIMIT $3 FOR SHARE) b`,
		[]any{container, after, limit}, &last, &n); err != nil {
		return "", 0, err
	}
	if last != nil {
		// The rows are locked: this statement's snapshot holds their
		// current versions.
		var k int64
		_, err := t.row(ctx, "build index", `SELECT count(idx_put(i.container, i.id, v.body)) FROM items i JOIN versions v ON v.version = i.version
			WHERE i.container = $1 AND i.id > $2 AND i.id <= $3 AND NOT i.deleted`, []any{container, after, *last}, &k)
		if err != nil {
			return "", 0, err
		}
	}
	if last == nil {
		_, err := t.execNow(ctx, "mark index ready", `UPDATE idx_paths SET ready = true WHERE container = $1 AND NOT ready`, container)
		return "", 0, err
	}
	return *last, n, nil
}

// IndexedPaths returns a container's built index paths.
func (s *Store) IndexedPaths(ctx context.Context, container string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT path FROM idx_paths WHERE container = $1 AND ready ORDER BY ord`, container)
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	return out, nil
}

// IndexesToBuild returns the containers with a path not yet built.
func (s *Store) IndexesToBuild(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT container FROM idx_paths WHERE NOT ready ORDER BY container`)
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	return out, nil
}

// indexItemQuery reads the items an index selects, with their index
// entry; append conditions on idx x.
const indexItemQuery = `SELECT i.container, i.id, i.pk, i.version, v.base, v.origin, v.ts, i.lsn, l.crts, i.deleted, v.body, x.t, x.n, x.s
	FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn
	WHERE NOT i.deleted AND `

// IndexScan reads a chunk of the items an index scan selects, in its order.
func (s *Store) IndexScan(ctx context.Context, container string, sc *query.IndexScan, after *hub.IndexPos, limit int,
	fn func(replica.Item, hub.IndexPos) error) (int, error) {
	w := newWhere(container, sc)
	q := indexItemQuery + w.b.String()
	if after != nil {
		t, n, str := indexKey(after.Value)
		if sc.Order >= 0 {
			q += ` AND (x.t, x.n, x.s, x.id) > (` + w.arg(t) + `, ` + w.arg(n) + `, ` + w.arg(str) + `, ` + w.arg(after.ID) + `)`
		} else {
			pt, pn, ps := w.arg(t), w.arg(n), w.arg(str)
			q += ` AND ((x.t, x.n, x.s) < (` + pt + `, ` + pn + `, ` + ps + `) OR (x.t = ` + pt + ` AND x.n = ` + pn + ` AND x.s = ` + ps +
				` AND x.id > ` + w.arg(after.ID) + `))`
		}
	}
	// The limit is written into the text, so that the plan knows it.
	if sc.Order >= 0 {
		q += ` ORDER BY x.t, x.n, x.s, x.id LIMIT ` + strconv.Itoa(limit)
	} else {
		q += ` ORDER BY x.t DESC, x.n DESC, x.s DESC, x.id LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.pool.Query(ctx, q, w.args...)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	defer rows.Close()
	read := 0
	for rows.Next() {
		var it replica.Item
		var t int16
		var n float64
		var str string
		if err := rows.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Deleted, &it.Body,
			&t, &n, &str); err != nil {
			return read, fmt.Errorf("query index: %w", err)
		}
		read++
		if err := fn(it, hub.IndexPos{Value: indexValue(t, n, str), ID: it.ID}); err != nil {
			return read, err
		}
	}
	if err := rows.Err(); err != nil {
		return read, fmt.Errorf("query index: %w", err)
	}
	return read, nil
}

// IndexIDs returns the ids an index scan selects.
func (s *Store) IndexIDs(ctx context.Context, container string, sc *query.IndexScan, max int) ([]string, bool, error) {
	w := newWhere(container, sc)
	rows, err := s.pool.Query(ctx, `SELECT x.id FROM idx x WHERE `+w.b.String()+` LIMIT `+strconv.Itoa(max+1), w.args...)
	if err != nil {
		return nil, false, fmt.Errorf("query index: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, false, fmt.Errorf("query index: %w", err)
	}
	if len(ids) > max {
		return nil, false, nil
	}
	return ids, true, nil
}

// ItemsByID reads live items by id, in id order.
func (s *Store) ItemsByID(ctx context.Context, container string, ids []string, fn func(replica.Item) error) error {
	rows, err := s.pool.Query(ctx, itemQuery+`NOT i.deleted AND i.container = $1 AND i.id = ANY($2::text[]) ORDER BY i.id`, container, ids)
	if err != nil {
		return fmt.Errorf("query items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return fmt.Errorf("query items: %w", err)
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query items: %w", err)
	}
	return nil
}

// where builds the condition on idx x of an index scan.
type where struct {
	b    strings.Builder
	args []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func newWhere(container string, s *query.IndexScan) *where {
	w := &where{}
	w.b.WriteString(`x.container = ` + w.arg(container) + ` AND x.path = ` + w.arg(s.Path.Path))
	if s.Values != nil {
		if len(s.Values) == 0 {
			w.b.WriteString(` AND false`)
			return w
		}
		w.b.WriteString(` AND (`)
		for i, v := range s.Values {
			if i > 0 {
				w.b.WriteString(` OR `)
			}
			t, n, str := indexKey(v)
			w.b.WriteString(`(x.t = ` + w.arg(t) + ` AND x.n = ` + w.arg(n) + ` AND x.s = ` + w.arg(str) + `)`)
		}
		w.b.WriteString(`)`)
		return w
	}
	for _, bd := range []struct {
		b      *query.Bound
		op, eq string
	}{{s.Lo, ">", ">="}, {s.Hi, "<", "<="}} {
		if bd.b == nil {
			continue
		}
		t, n, str := indexKey(bd.b.Value)
		op := bd.op
		if bd.b.Inclusive {
			op = bd.eq
		}
		// Within a type rank one column orders: s for strings, n else.
		if t == 4 {
			w.b.WriteString(` AND x.t = ` + w.arg(t) + ` AND x.n = 0 AND x.s ` + op + ` ` + w.arg(str))
		} else {
			w.b.WriteString(` AND x.t = ` + w.arg(t) + ` AND x.n ` + op + ` ` + w.arg(n) + ` AND x.s = ''`)
		}
	}
	return w
}

// indexKey is a value's entry in idx: its type rank, number and string.
func indexKey(v any) (int16, float64, string) {
	t := int16(hub.IndexRank(v))
	switch v := v.(type) {
	case bool:
		if v {
			return t, 1, ""
		}
	case float64:
		return t, v, ""
	case string:
		return t, 0, v
	}
	return t, 0, ""
}

// indexValue is the value an idx entry stands for.
func indexValue(t int16, n float64, s string) any {
	switch t {
	case 2:
		return n != 0
	case 3:
		return n
	case 4:
		return s
	}
	return nil
}
