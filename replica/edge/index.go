package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// IndexBuildBatch is how many items one write transaction indexes while an
// index is built for a container's existing items: writes wait for one
// batch at most.
const IndexBuildBatch = 5000

// readyIndexes maps a container to its built index paths.
type readyIndexes map[string][]query.IndexPath

// loadIndexes reads the indexing policies (idx_paths) into the definitions
// and the built paths into r.ready.
func (r *Replica) loadIndexes(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT container, path, ready FROM idx_paths ORDER BY container, ord`)
	if err != nil {
		return err
	}
	defer rows.Close()
	policies := map[string][]string{}
	ready := readyIndexes{}
	for rows.Next() {
		var c, p string
		var ok bool
		if err := rows.Scan(&c, &p, &ok); err != nil {
			return err
		}
		policies[c] = append(policies[c], p)
		if ok {
			names, err := replica.IndexPathNames(p)
			if err != nil {
				return fmt.Errorf("container %s index path %q: %w", c, p, err)
			}
			ready[c] = append(ready[c], query.IndexPath{Path: p, Names: names})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for c, paths := range policies {
		if d, err := r.defs.Get(c); err == nil {
			def := d.Def
			def.IndexingPolicy = &replica.IndexingPolicy{Paths: paths}
			r.defs.Set(def)
		}
	}
	r.ready.Store(&ready)
	return nil
}

// setIndexPaths records a container's indexing policy in idx_paths (in the
// writer's transaction): paths no longer indexed lose their rows, new ones
// are added not yet ready. It reports whether any path needs building.
func (r *Replica) setIndexPaths(ctx context.Context, name string, p *replica.IndexingPolicy) (bool, error) {
	var paths []string
	if p != nil {
		paths = p.Paths
	}
	var oldJSON string
	if err := r.w.QueryRow(ctx, `SELECT json_group_array(path) FROM idx_paths WHERE container = ?`, name).Scan(&oldJSON); err != nil {
		return false, err
	}
	var old []string
	if err := json.Unmarshal([]byte(oldJSON), &old); err != nil {
		return false, err
	}
	for _, o := range old {
		if !containsString(paths, o) {
			// Queries stop using the path before its rows go (if this
			// transaction rolls back, they scan until the next reload).
			r.unready(name, o)
			if _, err := r.w.Exec(ctx, `DELETE FROM idx WHERE container = ? AND path = ?`, name, o); err != nil {
				return false, sqlitestore.Wrote("drop index", err)
			}
			if _, err := r.w.Exec(ctx, `DELETE FROM idx_paths WHERE container = ? AND path = ?`, name, o); err != nil {
				return false, sqlitestore.Wrote("drop index", err)
			}
			r.log.Info("index dropped", "container", name, "path", o)
		}
	}
	build := false
	for i, path := range paths {
		names, err := replica.IndexPathNames(path)
		if err != nil {
			return false, err
		}
		res, err := r.w.Exec(ctx, `INSERT INTO idx_paths (container, ord, path, jpath) VALUES (?, ?, ?, ?)
			ON CONFLICT (container, path) DO UPDATE SET ord = excluded.ord`, name, i, path, replica.IndexJSONPath(names))
		if err != nil {
			return false, sqlitestore.Wrote("store index path", err)
		}
		if !containsString(old, path) {
			if n, _ := res.RowsAffected(); n > 0 {
				build = true
			}
		}
	}
	return build, nil
}

// buildIndexes indexes the existing items of a container for its paths not
// yet ready, IndexBuildBatch items per write transaction (writes made
// meanwhile are indexed by the triggers), then marks them ready.
func (r *Replica) buildIndexes(ctx context.Context, name string) error {
	start := time.Now()
	after, done := "", 0
	for {
		var last sql.NullString
		var n int
		err := r.submit(ctx, func(ctx context.Context) error {
			last, n = sql.NullString{}, 0
			if err := r.w.QueryRow(ctx, `SELECT max(id), count(*) FROM (SELECT id FROM items WHERE container = ? AND id > ? ORDER BY id LIMIT ?)`,
				name, after, IndexBuildBatch).Scan(&last, &n); err != nil {
				return err
			}
			if !last.Valid {
				_, err := r.w.Exec(ctx, `UPDATE idx_paths SET ready = 1 WHERE container = ? AND ready = 0`, name)
				return sqlitestore.Wrote("mark index ready", err)
			}
			_, err := r.w.Exec(ctx, `INSERT OR IGNORE INTO idx (container, path, t, v, id)
				SELECT container, path, t, v, id FROM (
					SELECT i.container AS container, i.id AS id, p.path AS path,
						CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
							WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
						CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
							WHEN 'text' THEN json_extract(ch.body, p.jpath) ELSE CAST(json_extract(ch.body, p.jpath) AS REAL) END AS v
					FROM items i JOIN changes ch ON ch.seq = i.seq JOIN idx_paths p ON p.container = i.container AND p.ready = 0
					WHERE i.container = ? AND i.id > ? AND i.id <= ? AND i.deleted = 0)
				WHERE t IS NOT NULL`, name, after, last.String)
			return sqlitestore.Wrote("build index", err)
		}, nil)
		if err != nil {
			return fmt.Errorf("build index of %s: %w", name, err)
		}
		if !last.Valid {
			break
		}
		after = last.String
		done += n
		r.log.Info("building index", "container", name, "items", done)
	}
	r.log.Info("index built", "container", name, "items", done, "took", time.Since(start))
	return r.reloadReady(ctx)
}

// unready stops queries using one path of a container's index.
func (r *Replica) unready(container, path string) {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	cur := r.ready.Load()
	next := readyIndexes{}
	if cur != nil {
		for c, ps := range *cur {
			next[c] = ps
		}
	}
	var keep []query.IndexPath
	for _, p := range next[container] {
		if p.Path != path {
			keep = append(keep, p)
		}
	}
	next[container] = keep
	r.ready.Store(&next)
}

// reloadReady re-reads the built paths.
func (r *Replica) reloadReady(ctx context.Context) error {
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	rows, err := r.db.Read.QueryContext(ctx, `SELECT container, path FROM idx_paths WHERE ready = 1 ORDER BY container, ord`)
	if err != nil {
		return err
	}
	defer rows.Close()
	ready := readyIndexes{}
	for rows.Next() {
		var c, p string
		if err := rows.Scan(&c, &p); err != nil {
			return err
		}
		names, err := replica.IndexPathNames(p)
		if err != nil {
			return err
		}
		ready[c] = append(ready[c], query.IndexPath{Path: p, Names: names})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	r.ready.Store(&ready)
	return nil
}

// kickBuild wakes the index builder (a size-1 channel: kicks while it
// builds fold into one more pass).
func (r *Replica) kickBuild() {
	select {
	case r.buildKick <- struct{}{}:
	default:
	}
}

// indexBuilder builds the paths of indexing policies learnt from the hub,
// outside the sync session (a build of a large container takes seconds).
// A failed build leaves its paths unready, so queries scan, and is tried
// again at the next kick and at the next Open.
func (r *Replica) indexBuilder(ctx context.Context) {
	defer close(r.buildDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.buildKick:
		}
		if err := r.buildPending(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("build index", "err", err)
		}
	}
}

// buildPending builds the indexes left unbuilt (by a stop during a build).
func (r *Replica) buildPending(ctx context.Context) error {
	rows, err := r.db.Read.QueryContext(ctx, `SELECT DISTINCT container FROM idx_paths WHERE ready = 0`)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		names = append(names, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, c := range names {
		if err := r.buildIndexes(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// maxIndexIDs bounds the ids an index scan collects to read them in id
// order; a scan that selects more reads the whole container instead.
const maxIndexIDs = 1 << 20

// indexSource returns the built indexes of a container for a query over
// the local view, or nil. full is the container's full scan.
func (r *Replica) indexSource(containerName string, st *SyncState, n *int64, full query.Source) *query.IndexSource {
	ready := r.ready.Load()
	if ready == nil || len((*ready)[containerName]) == 0 {
		return nil
	}
	scoped := st.HubID != ""
	var doc []byte
	// emit scans one row (the document's columns, then with key its
	// index key) and passes the document on unless it is outside the
	// node's scope. The row's destinations are made once per query.
	var (
		it   replica.Item
		body sql.RawBytes // valid until the next row: AppendJSON copies it
		key  indexKey
	)
	dst := []any{&it.ID, &it.PK, &it.Version, &it.TS, &it.LSN, &it.CRTS, &it.Tentative, &body, &key.t, &key.v}
	emit := func(rows *sql.Rows, fn func([]byte) error, withKey bool) (indexKey, error) {
		d := dst[:8]
		if withKey {
			d = dst
		}
		it = replica.Item{Container: containerName}
		if err := rows.Scan(d...); err != nil {
			return indexKey{}, fmt.Errorf("query index: %w", err)
		}
		it.Body = body
		key.id = it.ID
		if scoped && !wire.InScope(st.Scope, containerName, it.PK) {
			return key, nil
		}
		*n++
		r.yieldToWriter()
		doc = it.AppendJSON(doc[:0])
		return key, fn(doc)
	}
	return &query.IndexSource{
		Paths: (*ready)[containerName],
		// One value and ordered scans read each document in the statement
		// that reads its index row; scanByID reads the ids first and the
		// documents later, which may have changed meanwhile.
		Exact: func(s *query.IndexScan) bool {
			return s.Order != 0 || len(s.Values) == 1 && s.Lo == nil && s.Hi == nil
		},
		Scan: func(ctx context.Context, s *query.IndexScan, fn func([]byte) error) error {
			where, args := sqlitestore.IndexWhere(containerName, s)
			if s.Order == 0 && len(s.Values) == 1 {
				// One value: the index holds its items in id order, the
				// order of a scan, so they are read as they come.
				return r.scanEqual(ctx, where, args, fn, emit)
			}
			if s.Order == 0 {
				return r.scanByID(ctx, containerName, where, args, fn, emit, full)
			}
			var key []any // the last row's (t, v, id)
			for {
				q := indexRowsSQL + where
				qargs := slices.Clone(args)
				switch {
				case key == nil:
				case s.Order > 0:
					q += ` AND (x.t, x.v, x.id) > (?, ?, ?)`
					qargs = append(qargs, key...)
				default:
					q += ` AND ((x.t, x.v) < (?, ?) OR (x.t = ? AND x.v = ? AND x.id > ?))`
					qargs = append(qargs, key[0], key[1], key[0], key[1], key[2])
				}
				if s.Order > 0 {
					q += ` ORDER BY x.t, x.v, x.id LIMIT ?`
				} else {
					q += ` ORDER BY x.t DESC, x.v DESC, x.id LIMIT ?`
				}
				qargs = append(qargs, QueryChunk)
				read, err := r.indexQuery(ctx, q, qargs, func(rows *sql.Rows) error {
					k, err := emit(rows, fn, true)
					key = []any{k.t, k.v, k.id}
					return err
				})
				if err != nil || read < QueryChunk {
					return err
				}
			}
		},
	}
}

// indexKey is an index row's key: type rank, value and id.
type indexKey struct {
	t  int64
	v  any
	id string
}

// indexRowsSQL reads the documents an index selects, with their index key;
// docRowsSQL without it; indexIDsSQL only their ids; docsByIDSQL the
// documents of a JSON array of ids, in id order.
const (
	indexRowsSQL = `SELECT i.id, i.pk, c.version, c.ts, c.lsn, c.crts, c.lsn = 0, c.body, x.t, x.v FROM idx x
		JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq WHERE i.deleted = 0 AND `
	docRowsSQL = `SELECT i.id, i.pk, c.version, c.ts, c.lsn, c.crts, c.lsn = 0, c.body FROM idx x
		JOIN items i ON i.container = x.container AND i.id = x.id JOIN changes c ON c.seq = i.seq WHERE i.deleted = 0 AND `
	indexIDsSQL = `SELECT x.id FROM idx x WHERE `
	docsByIDSQL = `SELECT i.id, i.pk, c.version, c.ts, c.lsn, c.crts, c.lsn = 0, c.body FROM items i JOIN changes c ON c.seq = i.seq
		WHERE i.container = ? AND i.id IN (SELECT value FROM json_each(?)) AND i.deleted = 0 ORDER BY i.id`
)

// scanEqual reads the documents of one indexed value, which the index
// keeps in id order (its key ends with the id), QueryChunk per statement:
// one statement per chunk instead of collecting, sorting and reading the
// ids again as scanByID does.
func (r *Replica) scanEqual(ctx context.Context, where string, args []any, fn func([]byte) error,
	emit func(*sql.Rows, func([]byte) error, bool) (indexKey, error)) error {
	after := ""
	q := docRowsSQL + where + ` AND x.id > ? ORDER BY x.id LIMIT ?`
	for {
		read, err := r.indexQuery(ctx, q, append(slices.Clone(args), after, QueryChunk), func(rows *sql.Rows) error {
			k, err := emit(rows, fn, false)
			after = k.id
			return err
		})
		if err != nil || read < QueryChunk {
			return err
		}
	}
}

// scanByID reads the documents an index selects in id order, as a full
// scan does: it collects their ids (at most maxIndexIDs, else it scans the
// whole container), sorts them, and reads the documents QueryChunk at a
// time.
func (r *Replica) scanByID(ctx context.Context, containerName, where string, args []any, fn func([]byte) error,
	emit func(*sql.Rows, func([]byte) error, bool) (indexKey, error), full query.Source) error {
	var ids []string
	stmt, release, err := r.indexStmt(ctx, indexIDsSQL+where)
	if err != nil {
		return fmt.Errorf("query index: %w", err)
	}
	defer release()
	rows, err := stmt.QueryContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return fmt.Errorf("query index: %w", err)
	}
	for rows.Next() {
		if len(ids)%indexCheckEvery == 0 {
			if err := context.Cause(ctx); err != nil {
				rows.Close()
				return err
			}
		}
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("query index: %w", err)
		}
		if len(ids) == maxIndexIDs {
			rows.Close()
			return full(ctx, fn)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("query index: %w", err)
	}
	slices.Sort(ids) // SQLite's BINARY order of TEXT is Go's order of strings
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), QueryChunk)]
		ids = ids[len(chunk):]
		list, err := json.Marshal(chunk)
		if err != nil {
			return err
		}
		if _, err := r.indexQuery(ctx, docsByIDSQL, []any{containerName, string(list)}, func(rows *sql.Rows) error {
			_, err := emit(rows, fn, false)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// indexCheckEvery is how many rows an index scan reads between looks at
// its query's context.
const indexCheckEvery = 64

// indexQuery runs one of an index scan's statements and calls row for each
// row; it returns how many rows it read.
//
// The statement runs without the query's context; the scan looks at it
// every indexCheckEvery rows instead (and the evaluator every few rows it
// is given). With a context that can end, the driver starts two goroutines
// per statement to watch it (database/sql's and SQLite's interrupt) and
// installs a progress handler: a cost per statement that a short indexed
// query (one statement of a few rows) feels. Each row of an index scan is
// one step through the index and two lookups, so that SQLite never runs
// long between two looks. A wait for a lock is bounded by the read pool's
// busy timeout.
func (r *Replica) indexQuery(ctx context.Context, q string, args []any, row func(*sql.Rows) error) (int, error) {
	stmt, release, err := r.indexStmt(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	defer release()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	rows, err := stmt.QueryContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return 0, fmt.Errorf("query index: %w", err)
	}
	read := 0
	for rows.Next() {
		if read%indexCheckEvery == indexCheckEvery-1 {
			if err := context.Cause(ctx); err != nil {
				rows.Close()
				return read, err
			}
		}
		read++
		if err := row(rows); err != nil {
			rows.Close()
			return read, err
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return read, fmt.Errorf("query index: %w", err)
	}
	return read, nil
}

// maxIndexStmts bounds the index scan statements kept prepared: their
// text varies only with the scan's shape (how many values, which bounds,
// the order).
const maxIndexStmts = 64

// indexStmt returns a statement prepared on the read pool for an index
// scan's SQL (preparing the three-table join costs about as much as running
// it for a short result) and a function to call once done with it. The
// first maxIndexStmts texts stay prepared; others are closed after use.
func (r *Replica) indexStmt(ctx context.Context, q string) (*sql.Stmt, func(), error) {
	r.idxStmtMu.Lock()
	defer r.idxStmtMu.Unlock()
	if st := r.idxStmts[q]; st != nil {
		return st, func() {}, nil
	}
	st, err := r.db.Read.PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	if len(r.idxStmts) >= maxIndexStmts {
		return st, func() { st.Close() }, nil
	}
	if r.idxStmts == nil {
		r.idxStmts = map[string]*sql.Stmt{}
	}
	r.idxStmts[q] = st
	return st, func() {}, nil
}
