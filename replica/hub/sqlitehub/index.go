package sqlitehub

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// setIndexPaths makes idx_paths list the paths of a container's indexing
// policy (JSON, "" for none), in the writer's transaction: paths no longer
// listed lose their index entries, new ones are added not yet ready.
func (t *tx) setIndexPaths(ctx context.Context, name, indexing string) error {
	var paths []string
	if indexing != "" {
		var p replica.IndexingPolicy
		if err := json.Unmarshal([]byte(indexing), &p); err != nil {
			return fmt.Errorf("container %s indexing policy: %w", name, err)
		}
		paths = p.Paths
	}
	var oldJSON string
	if err := t.s.w.QueryRow(ctx, `SELECT json_group_array(path) FROM idx_paths WHERE container = ?`, name).Scan(&oldJSON); err != nil {
		return fmt.Errorf("read index paths: %w", err)
	}
	var old []string
	if err := json.Unmarshal([]byte(oldJSON), &old); err != nil {
		return fmt.Errorf("read index paths: %w", err)
	}
	t.pathsChanged = true
	for _, o := range old {
		if slices.Contains(paths, o) {
			continue
		}
		// Queries stop using the path before its entries go.
		t.s.unready(name, o)
		if _, err := t.s.w.Exec(ctx, `DELETE FROM idx WHERE container = ? AND path = ?`, name, o); err != nil {
			return sqlitestore.Wrote("drop index", err)
		}
		if _, err := t.s.w.Exec(ctx, `DELETE FROM idx_paths WHERE container = ? AND path = ?`, name, o); err != nil {
			return sqlitestore.Wrote("drop index", err)
		}
		t.s.log.Info("index dropped", "container", name, "path", o)
	}
	for i, path := range paths {
		names, err := replica.IndexPathNames(path)
		if err != nil {
			return fmt.Errorf("container %s index path %q: %w", name, path, err)
		}
		if _, err := t.s.w.Exec(ctx, `INSERT INTO idx_paths (container, ord, path, jpath) VALUES (?, ?, ?, ?)
			ON CONFLICT (container, path) DO UPDATE SET ord = excluded.ord`, name, i, path, replica.IndexJSONPath(names)); err != nil {
			return sqlitestore.Wrote("store index path", err)
		}
	}
	return nil
}

// BuildIndex indexes up to limit items for the paths not yet ready.
func (t *tx) BuildIndex(ctx context.Context, container, after string, limit int) (string, int, error) {
	var last sql.NullString
	var n int
	if err := t.s.w.QueryRow(ctx, `SELECT max(id), count(*) FROM (SELECT id FROM items WHERE container = ? AND id > ? ORDER BY id LIMIT ?)`,
		container, after, limit).Scan(&last, &n); err != nil {
		return "", 0, fmt.Errorf("read items to index: %w", err)
	}
	if !last.Valid {
		t.pathsChanged = true
		_, err := t.s.w.Exec(ctx, `UPDATE idx_paths SET ready = 1 WHERE container = ? AND ready = 0`, container)
		return "", 0, sqlitestore.Wrote("mark index ready", err)
	}
	_, err := t.s.w.Exec(ctx, `INSERT OR IGNORE INTO idx (container, path, t, v, id)
		SELECT container, path, t, v, id FROM (
			SELECT i.container AS container, i.id AS id, p.path AS path,
				CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
					WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
				CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
					WHEN 'text' THEN json_extract(vr.body, p.jpath) ELSE CAST(json_extract(vr.body, p.jpath) AS REAL) END AS v
			FROM items i JOIN versions vr ON vr.version = i.version JOIN idx_paths p ON p.container = i.container AND p.ready = 0
			WHERE i.container = ? AND i.id > ? AND i.id <= ? AND i.deleted = 0 AND vr.body IS NOT NULL)
		WHERE t IS NOT NULL`, container, after, last.String)
	if err != nil {
		return "", 0, sqlitestore.Wrote("build index", err)
	}
	return last.String, n, nil
}

// IndexedPaths returns a container's built index paths. They are kept in
// memory from one commit that changes idx_paths to the next (a query reads
// them every time).
func (s *Store) IndexedPaths(ctx context.Context, container string) ([]string, error) {
	s.idxMu.Lock()
	if paths, ok := s.readyPaths[container]; ok {
		s.idxMu.Unlock()
		return paths, nil
	}
	gen := s.readyGen
	s.idxMu.Unlock()
	rows, err := s.db.Read.QueryContext(ctx, `SELECT path FROM idx_paths WHERE container = ? AND ready = 1 ORDER BY ord`, container)
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	paths, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.readyGen == gen && len(s.readyPaths) < maxReadyPaths {
		if s.readyPaths == nil {
			s.readyPaths = map[string][]string{}
		}
		s.readyPaths[container] = paths
	}
	return paths, nil
}

// unready stops queries using one path of a container's index, until the
// transaction that drops it commits or rolls back.
func (s *Store) unready(container, path string) {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.readyGen++
	if s.readyPaths == nil {
		s.readyPaths = map[string][]string{}
	}
	var keep []string
	for _, p := range s.readyPaths[container] {
		if p != path {
			keep = append(keep, p)
		}
	}
	if _, ok := s.readyPaths[container]; !ok {
		keep = []string{} // unknown: none, until the commit
	}
	s.readyPaths[container] = keep
}

// maxReadyPaths bounds the containers whose built index paths are kept in
// memory.
const maxReadyPaths = 4096

// forgetReadyPaths drops the built index paths kept in memory, after a
// commit that changed them.
func (s *Store) forgetReadyPaths() {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.readyPaths = nil
	s.readyGen++
}

// maxIndexStmts bounds the index scan statements kept prepared: their
// text varies only with the scan's shape (how many values, which bounds,
// the order).
const maxIndexStmts = 64

// indexStmt returns a statement prepared on the read pool for an index
// scan's SQL (preparing the four-table join costs about as much as running
// it for a short result) and a function to call once done with it. The
// first maxIndexStmts texts stay prepared until Close; others are closed
// after use.
func (s *Store) indexStmt(ctx context.Context, q string) (*sql.Stmt, func(), error) {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if st := s.idxStmts[q]; st != nil {
		return st, func() {}, nil
	}
	st, err := s.db.Read.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	if len(s.idxStmts) >= maxIndexStmts {
		return st, func() { st.Close() }, nil
	}
	if s.idxStmts == nil {
		s.idxStmts = map[string]*sql.Stmt{}
	}
	s.idxStmts[q] = st
	return st, func() {}, nil
}

// IndexesToBuild returns the containers with a path not yet built.
func (s *Store) IndexesToBuild(ctx context.Context) ([]string, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT DISTINCT container FROM idx_paths WHERE ready = 0 ORDER BY container`)
	if err != nil {
		return nil, fmt.Errorf("read index paths: %w", err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// indexItemQuery reads the items an index selects, with their index
// value; append conditions on idx x.
const indexItemQuery = `SELECT i.container, i.id, i.pk, i.version, v.base, v.origin, v.ts, i.lsn, l.crts, i.deleted, v.body, x.t, x.v
	FROM idx x JOIN items i ON i.container = x.container AND i.id = x.id JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn
	WHERE i.deleted = 0 AND `

// IndexScan reads a chunk of the items an index scan selects, in its order.
func (s *Store) IndexScan(ctx context.Context, container string, sc *query.IndexScan, after *hub.IndexPos, limit int,
	fn func(replica.Item, hub.IndexPos) error) (int, error) {
	where, args := sqlitestore.IndexWhere(container, sc)
	q := indexItemQuery + where
	if after != nil {
		t, v := sqlitestore.IndexValue(after.Value)
		if sc.Order >= 0 {
			q += ` AND (x.t, x.v, x.id) > (?, ?, ?)`
			args = append(args, t, v, after.ID)
		} else {
			q += ` AND ((x.t, x.v) < (?, ?) OR (x.t = ? AND x.v = ? AND x.id > ?))`
			args = append(args, t, v, t, v, after.ID)
		}
	}
	if sc.Order >= 0 {
		q += ` ORDER BY x.t, x.v, x.id LIMIT ?`
	} else {
		q += ` ORDER BY x.t DESC, x.v DESC, x.id LIMIT ?`
	}
	args = append(args, limit)
	stmt, release, err := s.indexStmt(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	defer release()
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	defer rows.Close()
	read := 0
	for rows.Next() {
		var it replica.Item
		var t int64
		var v any
		if err := rows.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Deleted, &it.Body, &t, &v); err != nil {
			return read, fmt.Errorf("query index: %w", err)
		}
		read++
		if err := fn(it, hub.IndexPos{Value: storedValue(t, v), ID: it.ID}); err != nil {
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
	where, args := sqlitestore.IndexWhere(container, sc)
	stmt, release, err := s.indexStmt(ctx, `SELECT x.id FROM idx x WHERE `+where+` LIMIT ?`)
	if err != nil {
		return nil, false, fmt.Errorf("query index: %w", err)
	}
	defer release()
	rows, err := stmt.QueryContext(ctx, append(args, max+1)...)
	if err != nil {
		return nil, false, fmt.Errorf("query index: %w", err)
	}
	ids, err := scanStrings(rows)
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
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	stmt, release, err := s.indexStmt(ctx, itemQuery+`i.container = ? AND i.id IN (SELECT value FROM json_each(?)) AND i.deleted = 0 ORDER BY i.id`)
	if err != nil {
		return fmt.Errorf("query items: %w", err)
	}
	defer release()
	rows, err := stmt.QueryContext(ctx, container, string(list))
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

// storedValue turns an idx row's (t, v) back into the value it stands
// for.
func storedValue(t int64, v any) any {
	switch t {
	case 1:
		return nil
	case 2:
		n, _ := v.(int64)
		return n != 0
	case 3:
		switch n := v.(type) {
		case float64:
			return n
		case int64:
			return float64(n)
		}
	case 4:
		switch s := v.(type) {
		case string:
			return s
		case []byte:
			return string(s)
		}
	}
	return v
}
