// Package sqlitehub keeps a hub in one SQLite database (hub.db in the data
// directory): the embedded backend of hub.Store. Writes go through one
// sqlitestore.Writer (group commit), so a push batch, its outcomes and its
// conflicts commit atomically, and nothing is confirmed before it is
// durable.
//
// LSNs and conflict sequence numbers are handed out by the transaction of a
// group: the first one it takes reads the newest committed number from the
// database (the log's and the conflicts' largest, both indexed), and a group
// rolled back takes its numbers with it.
package sqlitehub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// DBFile is the name of the database inside the data directory.
const DBFile = "hub.db"

// Config configures a Store.
type Config struct {
	Dir        string // the data directory, created if missing
	Durability string // sqlitestore.DurabilityFull (default) or DurabilityNormal
	Logger     *slog.Logger
}

// Store is a hub.Store on SQLite.
type Store struct {
	cfg   Config
	log   *slog.Logger
	db    *sqlitestore.DB
	w     *sqlitestore.Writer
	stmts stmts
	hubID string

	commit func(hub.Heads)
	heads  atomic.Pointer[hub.Heads] // committed

	tx tx // the open group's transaction (writer-owned)

	idxMu      sync.Mutex
	idxStmts   map[string]*sql.Stmt // index scans prepared on the read pool (indexStmt)
	readyPaths map[string][]string  // built index paths by container (IndexedPaths)
	readyGen   int64                // counts forgetReadyPaths
}

var _ hub.Store = (*Store)(nil)

// New returns a store for cfg; call Open (the hub does).
func New(cfg Config) *Store {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	s.tx.s = s
	s.tx.reset()
	return s
}

// Open opens or creates the data directory and the database, applies the
// migrations and starts the writer.
func (s *Store) Open(ctx context.Context, commit func(hub.Heads)) (err error) {
	if s.cfg.Dir == "" {
		return fmt.Errorf("%w: data directory is empty", replica.ErrInvalid)
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	s.commit = commit
	s.db, err = sqlitestore.Open(ctx, filepath.Join(s.cfg.Dir, DBFile), sqlitestore.Options{Durability: s.cfg.Durability, Logger: s.log}, hub.SQLiteMigrations())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.db.Close()
		}
	}()
	if s.hubID, err = sqlitestore.MetaID(ctx, s.db.Write, "hub_id", wire.HubNodePrefix); err != nil {
		return fmt.Errorf("hub id: %w", err)
	}
	var hd hub.Heads
	if hd, err = s.readHeads(ctx, s.db.Write); err != nil {
		return err
	}
	s.heads.Store(&hd)
	s.w = sqlitestore.NewWriter(s.db, sqlitestore.WriterConfig{
		Logger:     s.log,
		OnBegin:    s.tx.reset,
		OnRollback: s.rolledBack,
		OnCommit:   s.committed,
	})
	if err := s.w.Open(ctx); err != nil {
		return err
	}
	if err := s.stmts.prepare(ctx, s.w, s.db.Read); err != nil {
		s.w.Close(ctx)
		return fmt.Errorf("prepare: %w", err)
	}
	if err := s.syncIndexPaths(ctx); err != nil {
		s.w.Close(ctx)
		return err
	}
	return nil
}

// syncIndexPaths makes idx_paths follow the indexing policies stored
// before the hub kept indexes (a database made by an older version).
func (s *Store) syncIndexPaths(ctx context.Context) error {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT c.name, c.indexing FROM containers c
		WHERE c.indexing != '' AND NOT EXISTS (SELECT 1 FROM idx_paths p WHERE p.container = c.name)`)
	if err != nil {
		return fmt.Errorf("read indexing policies: %w", err)
	}
	type def struct{ name, indexing string }
	var defs []def
	for rows.Next() {
		var d def
		if err := rows.Scan(&d.name, &d.indexing); err != nil {
			rows.Close()
			return fmt.Errorf("read indexing policies: %w", err)
		}
		defs = append(defs, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("read indexing policies: %w", err)
	}
	if len(defs) == 0 {
		return nil
	}
	wait, err := s.w.Queue(ctx, func(ctx context.Context) error {
		for _, d := range defs {
			if err := s.tx.setIndexPaths(ctx, d.name, d.indexing); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return wait()
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) readHeads(ctx context.Context, db queryer) (hub.Heads, error) {
	var hd hub.Heads
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(lsn), 0) FROM log`).Scan(&hd.LSN); err != nil {
		return hd, fmt.Errorf("read log head: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(cseq), 0) FROM conflicts`).Scan(&hd.Cseq); err != nil {
		return hd, fmt.Errorf("read conflicts head: %w", err)
	}
	return hd, nil
}

// committed runs on the writer after a group committed.
// rolledBack runs after a write transaction rolled back.
func (s *Store) rolledBack() {
	if s.tx.pathsChanged {
		s.forgetReadyPaths() // a path unready for a drop that did not happen
	}
	s.tx.reset()
}

func (s *Store) committed() {
	hd := *s.heads.Load()
	if s.tx.lsn >= 0 {
		hd.LSN = s.tx.lsn
	}
	if s.tx.cseq >= 0 {
		hd.Cseq = s.tx.cseq
	}
	s.heads.Store(&hd)
	if s.tx.pathsChanged {
		s.forgetReadyPaths()
	}
	s.tx.reset()
	if s.commit != nil {
		s.commit(hd)
	}
}

// Close stops the writer and closes the database.
func (s *Store) Close(ctx context.Context) error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Close(ctx); err != nil {
		return err
	}
	s.stmts.close()
	s.idxMu.Lock()
	for _, st := range s.idxStmts {
		st.Close()
	}
	s.idxStmts = nil
	s.idxMu.Unlock()
	return s.db.Close()
}

// Done is closed when the writer has stopped.
func (s *Store) Done() <-chan struct{} { return s.w.Done() }

// WriterStats are the writer's counters.
func (s *Store) WriterStats() *sqlitestore.WriterStats { return s.w.Stats() }

// HubID is the hub's id, generated at first open.
func (s *Store) HubID(ctx context.Context) (string, error) { return s.hubID, nil }

// Heads are the newest committed LSN and conflict sequence number.
func (s *Store) Heads(ctx context.Context) (hub.Heads, error) { return *s.heads.Load(), nil }

// Containers returns every container definition.
func (s *Store) Containers(ctx context.Context) ([]replica.Container, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT name, pk_path, policy, indexing FROM containers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read containers: %w", err)
	}
	defer rows.Close()
	return hub.ScanContainers(rows)
}

// Enter and Leave bracket a caller's write (sqlitestore.Writer).
func (s *Store) Enter() { s.w.Enter() }

// Leave ends what Enter began.
func (s *Store) Leave() { s.w.Leave() }

// Queue queues a job in the writer.
func (s *Store) Queue(ctx context.Context, fn func(ctx context.Context, tx hub.Tx) error, after func()) (func() error, error) {
	wait, err := s.w.Queue(ctx, func(ctx context.Context) error { return fn(ctx, &s.tx) }, after)
	if errors.Is(err, sqlitestore.ErrWriterClosed) {
		return nil, replica.ErrClosed
	}
	return wait, err
}

// itemQuery reads an item's current confirmed version; append conditions on i.
const itemQuery = `SELECT i.container, i.id, i.pk, i.version, v.base, v.origin, v.ts, i.lsn, l.crts, i.deleted, v.body
	FROM items i JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn WHERE `

func scanItem(s interface{ Scan(...any) error }) (replica.Item, error) {
	var it replica.Item
	err := s.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Deleted, &it.Body)
	return it, err
}

// Item reads an item's current confirmed version.
func (s *Store) Item(ctx context.Context, container, id string) (replica.Item, bool, error) {
	it, err := scanItem(s.stmts.getItem.QueryRowContext(ctx, container, id))
	if errors.Is(err, sql.ErrNoRows) {
		return replica.Item{}, false, nil
	}
	if err != nil {
		return replica.Item{}, false, fmt.Errorf("read item: %w", err)
	}
	return it, true, nil
}

// ListItems returns a page of live items.
func (s *Store) ListItems(ctx context.Context, container string, pk *string, limit int, continuation, prefix string) ([]replica.Item, string, error) {
	return replica.ListItems(ctx, s.db.Read, itemQuery+`i.deleted = 0`, container, pk, limit, continuation, prefix,
		func(rows *sql.Rows) (replica.Item, error) { return scanItem(rows) })
}

// ScanItems streams a chunk of live items to fn.
func (s *Store) ScanItems(ctx context.Context, container, after string, limit int, fn func(replica.Item) error) (int, error) {
	rows, err := s.db.Read.QueryContext(ctx, itemQuery+`i.deleted = 0 AND i.container = ? AND i.id > ? ORDER BY i.id LIMIT ?`, container, after, limit)
	if err != nil {
		return 0, fmt.Errorf("query items: %w", err)
	}
	defer rows.Close()
	read := 0
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return read, fmt.Errorf("query items: %w", err)
		}
		read++
		if err := fn(it); err != nil {
			return read, err
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return read, fmt.Errorf("query items: %w", err)
	}
	return read, nil
}

const logQuery = `SELECT l.lsn, l.crts, l.container, l.op, l.id, l.pk, l.version, l.base, l.origin, l.ts, l.policy, l.resolver, l.resolves, l.clamped_ts, v.body
	FROM log l JOIN versions v ON v.version = l.version WHERE `

func scanLog(rows *sql.Rows) (wire.Change, error) {
	var c wire.Change
	var body []byte
	err := rows.Scan(&c.LSN, &c.CRTS, &c.Container, &c.Op, &c.ID, &c.PK, &c.Version, &c.Base, &c.Origin, &c.TS, &c.Policy, &c.Resolver, &c.Resolves, &c.ClampedTS, &body)
	if c.Op != replica.OpDelete {
		c.Body = body
	}
	return c, err
}

// Changes returns a container's log records after since.
func (s *Store) Changes(ctx context.Context, container string, since int64, limit int) ([]wire.Change, error) {
	rows, err := s.db.Read.QueryContext(ctx, logQuery+`l.container = ? AND l.lsn > ? ORDER BY l.lsn LIMIT ?`, container, since, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []wire.Change
	for rows.Next() {
		c, err := scanLog(rows)
		if err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LogAfter reads log records for a stream. SQLite skips the node's own
// records without handing them over, and for a reader with a scope the
// records the scope does not cover (other containers, other partition
// keys), without reading their bodies.
func (s *Store) LogAfter(ctx context.Context, after, hi int64, limit, maxBytes int, scope []wire.ScopeEntry, skipOrigin string) ([]wire.Change, int64, error) {
	var rows *sql.Rows
	var err error
	if len(scope) > 0 {
		whole, keyed := scopeFilter(scope)
		rows, err = s.stmts.logAfterScoped.QueryContext(ctx, after, limit, skipOrigin, hi, whole, keyed)
	} else {
		rows, err = s.stmts.logAfter.QueryContext(ctx, after, limit, skipOrigin, hi)
	}
	if err != nil {
		return nil, after, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []wire.Change
	last, size, n := after, 0, 0
	for rows.Next() {
		c, err := scanLog(rows)
		if err != nil {
			return nil, after, fmt.Errorf("read log: %w", err)
		}
		n++
		last = c.LSN
		if !wire.InScope(scope, c.Container, c.PK) {
			continue
		}
		out = append(out, c)
		if size += len(c.Body); size >= maxBytes {
			return out, last, rows.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read log: %w", err)
	}
	if n < limit {
		last = hi // every record up to hi was read or skipped
	}
	return out, last, nil
}

// scopeFilter returns, as JSON arrays for logAfterScoped, the containers
// scope covers whole and the "container/pk" keys of the partition keys it
// lists for the others. Container names cannot hold '/', so a key splits
// only one way.
func scopeFilter(scope []wire.ScopeEntry) (whole, keyed []byte) {
	names, keys := []string{}, []string{} // "[]", not "null", when empty
	for _, e := range scope {
		if len(e.PartitionKeys) == 0 {
			if !containsString(names, e.Container) {
				names = append(names, e.Container)
			}
			continue
		}
		for _, k := range e.PartitionKeys {
			keys = append(keys, e.Container+"/"+k)
		}
	}
	whole, _ = json.Marshal(names) // strings only: cannot fail
	keyed, _ = json.Marshal(keys)
	return whole, keyed
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

const conflictColumns = `SELECT cid, cseq, kind, status, container, doc_id, pk, policy, loser, incoming, existing, base, winner_lsn, reason, created_at, resolver
	FROM conflicts `

// Conflicts returns a container's conflicts after id after.
func (s *Store) Conflicts(ctx context.Context, container, status string, after int64, limit int) ([]hub.Conflict, error) {
	q := conflictColumns + `WHERE container = ? AND cid > ?`
	args := []any{container, after}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY cid LIMIT ?`
	args = append(args, limit)
	return s.readConflicts(ctx, 0, q, args...)
}

// readConflicts runs a query of conflictColumns and returns its records
// with their versions, up to about maxBytes of documents (0: no
// limit; at least one record).
func (s *Store) readConflicts(ctx context.Context, maxBytes int, q string, args ...any) ([]hub.Conflict, error) {
	rows, err := s.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	return hub.ScanConflicts(ctx, rows, func() { rows.Close() }, s.ConflictVersion, maxBytes)
}

// ConflictsAfter returns the records of the conflicts feed after after.
func (s *Store) ConflictsAfter(ctx context.Context, after, head int64, limit, maxBytes int, scope []wire.ScopeEntry) (out []hub.Conflict, last int64, err error) {
	// The scope is applied to the positions first, so that records out of
	// scope cost no version reads.
	rows, err := s.db.Read.QueryContext(ctx, `SELECT cseq, container, pk FROM conflicts WHERE cseq > ? AND cseq <= ? ORDER BY cseq LIMIT ?`, after, head, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	var seqs []any
	n := 0
	last = after
	for rows.Next() {
		var seq int64
		var container, pk string
		if err := rows.Scan(&seq, &container, &pk); err != nil {
			rows.Close()
			return nil, after, fmt.Errorf("read conflicts: %w", err)
		}
		n++
		last = seq
		if wire.InScope(scope, container, pk) {
			seqs = append(seqs, seq)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	if n < limit {
		last = head // every record up to head was examined (numbers of settled conflicts leave gaps)
	}
	if len(seqs) == 0 {
		return nil, last, nil
	}
	q := conflictColumns + `WHERE cseq IN (?` + strings.Repeat(", ?", len(seqs)-1) + `) ORDER BY cseq`
	out, err = s.readConflicts(ctx, maxBytes, q, seqs...)
	if err != nil {
		return nil, after, err
	}
	if len(out) > 0 && len(out) < len(seqs) {
		// Cut by maxBytes (or a conflict settled since the first read, which
		// comes again under its new number): go on after the last one sent.
		last = out[len(out)-1].Seq
	}
	return out, last, nil
}

// ConflictVersion reads a version of the item (container, id) for the
// conflicts feed; nil if it is not one of that item's.
func (s *Store) ConflictVersion(ctx context.Context, container, id, version string) (*hub.ConflictVersion, error) {
	if version == "" {
		return nil, nil
	}
	var cv hub.ConflictVersion
	var op string
	var body []byte
	err := s.stmts.readVersion.QueryRowContext(ctx, version, container, id).Scan(&body, &op, &cv.Origin, &cv.TS, &cv.ClampedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read version: %w", err)
	}
	cv.Version = version
	cv.Deleted = op == replica.OpDelete
	if !cv.Deleted {
		cv.Document = body
	}
	return &cv, nil
}

// ConflictSides returns a recorded conflict's item and version ids.
func (s *Store) ConflictSides(ctx context.Context, container string, cid int64) (hub.ConflictSides, bool, error) {
	var c hub.ConflictSides
	err := s.db.Read.QueryRowContext(ctx, `SELECT kind, doc_id, incoming, existing, base FROM conflicts WHERE cid = ? AND container = ?`, cid, container).
		Scan(&c.Kind, &c.DocID, &c.Incoming, &c.Existing, &c.Base)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read conflict: %w", err)
	}
	return c, true, nil
}

// CountItems counts a container's live items.
func (s *Store) CountItems(ctx context.Context, container string) (int64, error) {
	var n int64
	if err := s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE container = ? AND deleted = 0`, container).Scan(&n); err != nil {
		return 0, fmt.Errorf("count items: %w", err)
	}
	return n, nil
}

// CountUnresolved counts unresolved conflicts.
func (s *Store) CountUnresolved(ctx context.Context, container string) (int64, error) {
	var n int64
	var err error
	if container == "" {
		err = s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM conflicts WHERE status = ?`, replica.StatusUnresolved).Scan(&n)
	} else {
		err = s.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM conflicts WHERE container = ? AND status = ?`, container, replica.StatusUnresolved).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count conflicts: %w", err)
	}
	return n, nil
}

// ItemVersions returns an item's newest versions, oldest first.
func (s *Store) ItemVersions(ctx context.Context, container, id string, max int) ([]hub.ItemVersion, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT * FROM (
		SELECT v.version, v.op, v.origin, v.ts, v.base, l.lsn IS NOT NULL, coalesce(l.lsn, 0), coalesce(l.crts, 0), v.outcome, v.reason,
			coalesce(l.policy, ''), coalesce(l.resolver, ''), coalesce(l.resolves, ''), v.body, v.rowid
		FROM versions v LEFT JOIN log l ON l.version = v.version
		WHERE v.container = ? AND v.id = ? ORDER BY v.rowid DESC LIMIT ?) ORDER BY rowid`, container, id, max)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer rows.Close()
	return hub.ScanItemVersions(rows)
}

const edgeColumns = `SELECT name, token_hash, scope, created_at, node_id, last_seen, acked_lsn, pending, clock_skew_ms, clock_measured_at, clamped FROM edges `

func scanEdge(sc interface{ Scan(...any) error }) (hub.EdgeRecord, error) {
	var e hub.EdgeRecord
	var scope string
	if err := sc.Scan(&e.Name, &e.TokenHash, &scope, &e.CreatedAt, &e.NodeID, &e.LastSeen, &e.AckedLSN, &e.Pending,
		&e.ClockSkew, &e.ClockMeasuredAt, &e.Clamped); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(scope), &e.Scope); err != nil {
		return e, fmt.Errorf("edge %s scope: %w", e.Name, err)
	}
	return e, nil
}

// EdgeByTokenHash returns the edge of a token hash.
func (s *Store) EdgeByTokenHash(ctx context.Context, hash string) (hub.EdgeRecord, bool, error) {
	e, err := scanEdge(s.db.Read.QueryRowContext(ctx, edgeColumns+`WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read edge: %w", err)
	}
	return e, true, nil
}

// Edges lists the registered edges by name.
func (s *Store) Edges(ctx context.Context) ([]hub.EdgeRecord, error) {
	rows, err := s.db.Read.QueryContext(ctx, edgeColumns+`ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	defer rows.Close()
	var out []hub.EdgeRecord
	for rows.Next() {
		e, err := scanEdge(rows)
		if err != nil {
			return nil, fmt.Errorf("list edges: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ClampedTotal sums the edges' clamped counts.
func (s *Store) ClampedTotal(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.Read.QueryRowContext(ctx, `SELECT coalesce(sum(clamped), 0) FROM edges`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count clamps: %w", err)
	}
	return n, nil
}

// Session returns a dashboard session by the hash of its id.
func (s *Store) Session(ctx context.Context, idHash string) (string, int64, bool, error) {
	var binding string
	var expires int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT binding, expires_at FROM sessions WHERE id_hash = ?`, idHash).Scan(&binding, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("read session: %w", err)
	}
	return binding, expires, true, nil
}

// Resolvers returns every stored resolver version.
func (s *Store) Resolvers(ctx context.Context) ([]hub.StoredResolver, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT name, version, sha256, size, uploaded_at, wasm, calls, failures FROM resolvers ORDER BY name, version`)
	if err != nil {
		return nil, fmt.Errorf("read resolvers: %w", err)
	}
	defer rows.Close()
	var out []hub.StoredResolver
	for rows.Next() {
		var r hub.StoredResolver
		if err := rows.Scan(&r.Name, &r.Version, &r.SHA256, &r.Size, &r.UploadedAt, &r.Wasm, &r.Calls, &r.Failures); err != nil {
			return nil, fmt.Errorf("read resolvers: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
