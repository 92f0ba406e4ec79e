// Package pghub keeps a hub in a PostgreSQL database: a backend of
// hub.Store on github.com/jackc/pgx/v5. Writes are committed in groups, as
// with SQLite (writer.go). LSNs, conflict sequence numbers and conflict ids
// are handed out by the transaction of a group from the one row of the
// heads table, which it locks (SELECT ... FOR UPDATE) before it takes the
// first and updates before it commits: transactions that take numbers
// follow one another, even from several processes, and one that rolls back
// gives its numbers back, so the log has no gaps.
package pghub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// Config configures a Store.
type Config struct {
	// URL is the database's connection string
	// (postgres://user:password@host:port/database?...).
	URL    string
	Logger *slog.Logger
	// MaxConns bounds the connections of the pool. Default 8.
	MaxConns int32
}

// Store is a hub.Store on PostgreSQL.
type Store struct {
	cfg   Config
	log   *slog.Logger
	pool  *pgxpool.Pool
	w     *writer
	hubID string

	commit func(hub.Heads)
	heads  atomic.Pointer[hub.Heads] // committed

	tx   tx    // the open group's transaction (writer-owned)
	tier *Tier // set by NewTier: fences decisions

	tracer pgx.QueryTracer // tests: sees every statement and batch sent
}

var _ hub.Store = (*Store)(nil)

// New returns a store for cfg; call Open (the hub does).
func New(cfg Config) *Store {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	s.tx.s = s
	return s
}

// Open connects, applies the migrations, reads the hub id (made at first
// open) and the heads, and starts the writer.
func (s *Store) Open(ctx context.Context, commit func(hub.Heads)) (err error) {
	if s.cfg.URL == "" {
		return fmt.Errorf("%w: PostgreSQL URL is empty", replica.ErrInvalid)
	}
	pc, err := pgxpool.ParseConfig(s.cfg.URL)
	if err != nil {
		return fmt.Errorf("%w: PostgreSQL URL: %v", replica.ErrInvalid, err)
	}
	pc.MaxConns = s.cfg.MaxConns
	if s.tier != nil {
		// A hub that stalls (paused, swapped out) inside a transaction
		// holds its locks (the heads row, the lease row) until the
		// server ends its session: at most a lease timeout, so that the
		// next hub can take over and commit.
		pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(s.tier.cfg.LeaseTimeout.Milliseconds())
	}
	// A hub confirms nothing before it is durable: every COMMIT waits for
	// its WAL to be flushed (and, with synchronous standbys, for them),
	// whatever the server's or the database's default. A URL may ask for
	// a stronger level (remote_apply), never for none.
	rp := pc.ConnConfig.RuntimeParams
	switch sc := rp["synchronous_commit"]; sc {
	case "":
		rp["synchronous_commit"] = "on"
	case "off":
		return fmt.Errorf("%w: PostgreSQL URL sets synchronous_commit=off: a hub would confirm writes that a crash of the database server loses", replica.ErrInvalid)
	}
	if rp["application_name"] == "" {
		rp["application_name"] = "cloudhub"
	}
	if s.tier != nil {
		// The hub that takes the lease over ends this hub's sessions by
		// this name (Tier.endSessions).
		rp["application_name"] = sessionName(s.tier.cfg.Name)
	}
	if s.tracer != nil {
		pc.ConnConfig.Tracer = s.tracer
	}
	pc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		presizeArrays(c.TypeMap())
		return nil
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() {
		if err != nil {
			s.pool.Close()
		}
	}()
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if s.hubID, err = s.metaID(ctx); err != nil {
		return err
	}
	// The paths and the triggers that keep their entries in one
	// transaction: no write between them goes unindexed.
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, syncIndexPathsSQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, followPathsSQL)
		return err
	}); err != nil {
		return fmt.Errorf("read indexing policies: %w", err)
	}
	var hd hub.Heads
	if err := s.pool.QueryRow(ctx, `SELECT lsn, cseq FROM heads WHERE id = 1`).Scan(&hd.LSN, &hd.Cseq); err != nil {
		return fmt.Errorf("read heads: %w", err)
	}
	s.heads.Store(&hd)
	s.commit = commit
	s.w = newWriter(s.pool, s.log)
	s.w.begin, s.w.beforeCommit, s.w.rollback, s.w.commit = s.tx.begin, s.tx.beforeCommit, s.tx.reset, s.committed
	s.w.open()
	return nil
}

// migrate applies the migrations not applied yet, one transaction each,
// under an advisory lock so that two processes do not race.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{
		`SELECT pg_advisory_xact_lock(7264851)`,
		`CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	if have < len(migrations) {
		s.log.Info("hub database upgraded", "from", have, "to", len(migrations))
	}
	return tx.Commit(ctx)
}

func (s *Store) metaID(ctx context.Context) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('hub_id', $1) ON CONFLICT (key) DO NOTHING`,
		wire.HubNodePrefix+hex.EncodeToString(b[:])); err != nil {
		return "", fmt.Errorf("hub id: %w", err)
	}
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'hub_id'`).Scan(&id); err != nil {
		return "", fmt.Errorf("hub id: %w", err)
	}
	return id, nil
}

// committed runs on the writer after a group committed.
func (s *Store) committed() {
	hd := *s.heads.Load()
	if s.tx.locked {
		hd.LSN, hd.Cseq = s.tx.lsn, s.tx.cseq
	}
	s.heads.Store(&hd)
	s.tx.reset()
	if s.commit != nil {
		s.commit(hd)
	}
}

// poolCloseWait bounds how long Close waits for the pool's connections to
// close once the writer has stopped.
const poolCloseWait = 2 * time.Second

// Close stops the writer and closes the pool. A connection whose query was
// cancelled (a request ended by the shutdown) closes in the background,
// and pgx gives the server up to 15 s to end it; nothing is left to write
// by then, so Close waits at most poolCloseWait (or until ctx ends) and
// leaves such a connection to the process's exit.
func (s *Store) Close(ctx context.Context) error {
	if s.w == nil {
		return nil
	}
	err := s.w.close(ctx)
	closed := make(chan struct{})
	go func() { s.pool.Close(); close(closed) }()
	t := time.NewTimer(poolCloseWait)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		s.log.Warn("database connections still closing; not waiting for them", "connections", s.pool.Stat().AcquiredConns(), "waited", poolCloseWait)
	case <-ctx.Done():
		s.log.Warn("database connections still closing; not waiting for them", "connections", s.pool.Stat().AcquiredConns(), "err", ctx.Err())
	}
	return err
}

// Done is closed when the writer has stopped.
func (s *Store) Done() <-chan struct{} { return s.w.done }

// WriterStats are the writer's counters.
func (s *Store) WriterStats() *sqlitestore.WriterStats { return &s.w.stats }

// HubID is the hub's id.
func (s *Store) HubID(ctx context.Context) (string, error) { return s.hubID, nil }

// Heads are the newest committed LSN and conflict sequence number, as the
// database has them (other hubs of a tier commit too).
func (s *Store) Heads(ctx context.Context) (hub.Heads, error) {
	var hd hub.Heads
	if err := s.pool.QueryRow(ctx, `SELECT lsn, cseq FROM heads WHERE id = 1`).Scan(&hd.LSN, &hd.Cseq); err != nil {
		return hd, fmt.Errorf("read heads: %w", err)
	}
	return hd, nil
}

// ResolverCount counts the stored resolver versions.
func (s *Store) ResolverCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM resolvers`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count resolvers: %w", err)
	}
	return n, nil
}

// Containers returns every container definition.
func (s *Store) Containers(ctx context.Context) ([]replica.Container, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, pk_path, policy, indexing FROM containers`)
	if err != nil {
		return nil, fmt.Errorf("read containers: %w", err)
	}
	defer rows.Close()
	return hub.ScanContainers(rows)
}

// Enter and Leave bracket a caller's write.
func (s *Store) Enter() { s.w.enter() }

// Leave ends what Enter began.
func (s *Store) Leave() { s.w.leave() }

// Queue queues a job in the writer.
func (s *Store) Queue(ctx context.Context, fn func(ctx context.Context, tx hub.Tx) error, after func()) (func() error, error) {
	wait, err := s.w.queue(ctx, func(ctx context.Context) error { return fn(ctx, &s.tx) }, after)
	if errors.Is(err, errWriterClosed) {
		return nil, replica.ErrClosed
	}
	return wait, err
}

const itemQuery = `SELECT i.container, i.id, i.pk, i.version, v.base, v.origin, v.ts, i.lsn, l.crts, i.deleted, v.body
	FROM items i JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn WHERE `

func scanItem(row pgx.Row) (replica.Item, error) {
	var it replica.Item
	err := row.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Deleted, &it.Body)
	return it, err
}

// Item reads an item's current confirmed version.
func (s *Store) Item(ctx context.Context, container, id string) (replica.Item, bool, error) {
	it, err := scanItem(s.pool.QueryRow(ctx, itemQuery+`i.container = $1 AND i.id = $2`, container, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return replica.Item{}, false, nil
	}
	if err != nil {
		return replica.Item{}, false, fmt.Errorf("read item: %w", err)
	}
	return it, true, nil
}

// ListItems returns a page of live items.
func (s *Store) ListItems(ctx context.Context, container string, pk *string, limit int, continuation, prefix string) ([]replica.Item, string, error) {
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	after, err := replica.DecodeContinuation(prefix, continuation)
	if err != nil {
		return nil, "", err
	}
	q := itemQuery + `NOT i.deleted AND i.container = $1 AND i.id > $2`
	args := []any{container, after}
	if pk != nil {
		q += ` AND i.pk = $3`
		args = append(args, *pk)
	}
	q += fmt.Sprintf(` ORDER BY i.id LIMIT %d`, limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list items: %w", err)
	}
	defer rows.Close()
	var items []replica.Item
	for rows.Next() {
		if len(items) == limit {
			return items, replica.EncodeContinuation(prefix, items[len(items)-1].ID), nil
		}
		it, err := scanItem(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list items: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list items: %w", err)
	}
	return items, "", nil
}

// ScanItems streams a chunk of live items to fn.
func (s *Store) ScanItems(ctx context.Context, container, after string, limit int, fn func(replica.Item) error) (int, error) {
	rows, err := s.pool.Query(ctx, itemQuery+`NOT i.deleted AND i.container = $1 AND i.id > $2 ORDER BY i.id LIMIT $3`, container, after, limit)
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
	if err := rows.Err(); err != nil {
		return read, fmt.Errorf("query items: %w", err)
	}
	return read, nil
}

const logColumns = `SELECT l.lsn, l.crts, l.container, l.op, l.id, l.pk, l.version, l.base, l.origin, l.ts, l.policy, l.resolver, l.resolves, l.clamped_ts, v.body
	FROM log l LEFT JOIN versions v ON v.version = l.version WHERE `

func scanLog(rows pgx.Rows) (wire.Change, error) {
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
	rows, err := s.pool.Query(ctx, logColumns+`l.container = $1 AND l.lsn > $2 ORDER BY l.lsn LIMIT $3`, container, since, limit)
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

// LogAfter reads log records for a stream; the database skips the node's
// own records and those outside the scope.
func (s *Store) LogAfter(ctx context.Context, after, hi int64, limit, maxBytes int, scope []wire.ScopeEntry, skipOrigin string) ([]wire.Change, int64, error) {
	var rows pgx.Rows
	var err error
	if len(scope) > 0 {
		whole, keyed := scopeFilter(scope)
		rows, err = s.pool.Query(ctx, logColumns+`l.lsn > $1 AND l.lsn <= $4 AND l.origin <> $3 AND (l.container = ANY($5) OR l.container || '/' || l.pk = ANY($6))
			ORDER BY l.lsn LIMIT $2`, after, limit, skipOrigin, hi, whole, keyed)
	} else {
		rows, err = s.pool.Query(ctx, logColumns+`l.lsn > $1 AND l.lsn <= $4 AND l.origin <> $3 ORDER BY l.lsn LIMIT $2`, after, limit, skipOrigin, hi)
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
			return out, last, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read log: %w", err)
	}
	if n < limit {
		last = hi
	}
	return out, last, nil
}

// scopeFilter returns the containers scope covers whole and the
// "container/pk" keys of the partition keys it lists for the others.
func scopeFilter(scope []wire.ScopeEntry) (whole, keyed []string) {
	whole, keyed = []string{}, []string{}
	for _, e := range scope {
		if len(e.PartitionKeys) == 0 {
			whole = append(whole, e.Container)
			continue
		}
		for _, k := range e.PartitionKeys {
			keyed = append(keyed, e.Container+"/"+k)
		}
	}
	return whole, keyed
}

const conflictColumns = `SELECT cid, cseq, kind, status, container, doc_id, pk, policy, loser, incoming, existing, base, winner_lsn, reason, created_at, resolver
	FROM conflicts `

// Conflicts returns a container's conflicts after id after.
func (s *Store) Conflicts(ctx context.Context, container, status string, after int64, limit int) ([]hub.Conflict, error) {
	q := conflictColumns + `WHERE container = $1 AND cid > $2`
	args := []any{container, after}
	if status != "" {
		q += ` AND status = $4`
	}
	q += ` ORDER BY cid LIMIT $3`
	args = append(args, limit)
	if status != "" {
		args = append(args, status)
	}
	return s.readConflicts(ctx, 0, q, args...)
}

func (s *Store) readConflicts(ctx context.Context, maxBytes int, q string, args ...any) ([]hub.Conflict, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	return hub.ScanConflicts(ctx, rows, rows.Close, s.ConflictVersion, maxBytes)
}

// ConflictsAfter returns the records of the conflicts feed after after.
func (s *Store) ConflictsAfter(ctx context.Context, after, head int64, limit, maxBytes int, scope []wire.ScopeEntry) ([]hub.Conflict, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT cseq, container, pk FROM conflicts WHERE cseq > $1 AND cseq <= $2 ORDER BY cseq LIMIT $3`, after, head, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	var seqs []int64
	n := 0
	last := after
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
		last = head
	}
	if len(seqs) == 0 {
		return nil, last, nil
	}
	out, err := s.readConflicts(ctx, maxBytes, conflictColumns+`WHERE cseq = ANY($1) ORDER BY cseq`, seqs)
	if err != nil {
		return nil, after, err
	}
	if len(out) > 0 && len(out) < len(seqs) {
		last = out[len(out)-1].Seq
	}
	return out, last, nil
}

// ConflictVersion reads a version of the item (container, id).
func (s *Store) ConflictVersion(ctx context.Context, container, id, version string) (*hub.ConflictVersion, error) {
	if version == "" {
		return nil, nil
	}
	var cv hub.ConflictVersion
	var op string
	var body []byte
	err := s.pool.QueryRow(ctx, `SELECT body, op, origin, ts, clamped_ts FROM versions WHERE version = $1 AND container = $2 AND id = $3`, version, container, id).
		Scan(&body, &op, &cv.Origin, &cv.TS, &cv.ClampedTS)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.pool.QueryRow(ctx, `SELECT kind, doc_id, incoming, existing, base FROM conflicts WHERE cid = $1 AND container = $2`, cid, container).
		Scan(&c.Kind, &c.DocID, &c.Incoming, &c.Existing, &c.Base)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE container = $1 AND NOT deleted`, container).Scan(&n); err != nil {
		return 0, fmt.Errorf("count items: %w", err)
	}
	return n, nil
}

// CountUnresolved counts unresolved conflicts.
func (s *Store) CountUnresolved(ctx context.Context, container string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM conflicts WHERE status = $1 AND ($2 = '' OR container = $2)`, replica.StatusUnresolved, container).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count conflicts: %w", err)
	}
	return n, nil
}

// versionLSN is, for a version v, the LSN at which the log may hold it:
// the LSN of its outcome, which is its own for a version confirmed as
// pushed or written at the hub; for a version stored without one (0), the
// number its id ends with, which is the LSN of a version the hub made as
// the merge of a conflict (Hub.versionOf). The log's record at that LSN is
// the version's only if it names it. So the log is read by its primary
// key, and keeps no index by version id: an index entry less for every
// decided document.
const versionLSN = `CASE WHEN v.lsn > 0 THEN v.lsn WHEN v.version ~ '-[0-9]{1,18}$' THEN substring(v.version FROM '-([0-9]{1,18})$')::bigint ELSE 0 END`

// ItemVersions returns an item's newest versions, oldest first.
func (s *Store) ItemVersions(ctx context.Context, container, id string, max int) ([]hub.ItemVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
		SELECT v.version, v.op, v.origin, v.ts, v.base, l.lsn IS NOT NULL, coalesce(l.lsn, 0), coalesce(l.crts, 0), v.outcome, v.reason,
			coalesce(l.policy, ''), coalesce(l.resolver, ''), coalesce(l.resolves, ''), v.body, v.seq
		FROM versions v LEFT JOIN log l ON l.lsn = `+versionLSN+` AND l.version = v.version
		WHERE v.container = $1 AND v.id = $2 ORDER BY v.seq DESC LIMIT $3) AS newest ORDER BY seq`, container, id, max)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer rows.Close()
	return hub.ScanItemVersions(rows)
}

const edgeColumns = `SELECT name, token_hash, scope, created_at, node_id, last_seen, acked_lsn, pending, clock_skew_ms, clock_measured_at, clamped, hub FROM edges `

func scanEdge(row pgx.Row) (hub.EdgeRecord, error) {
	var e hub.EdgeRecord
	var scope string
	if err := row.Scan(&e.Name, &e.TokenHash, &scope, &e.CreatedAt, &e.NodeID, &e.LastSeen, &e.AckedLSN, &e.Pending,
		&e.ClockSkew, &e.ClockMeasuredAt, &e.Clamped, &e.Hub); err != nil {
		return e, err
	}
	if err := json.Unmarshal([]byte(scope), &e.Scope); err != nil {
		return e, fmt.Errorf("edge %s scope: %w", e.Name, err)
	}
	return e, nil
}

// EdgeByTokenHash returns the edge of a token hash.
func (s *Store) EdgeByTokenHash(ctx context.Context, hash string) (hub.EdgeRecord, bool, error) {
	e, err := scanEdge(s.pool.QueryRow(ctx, edgeColumns+`WHERE token_hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read edge: %w", err)
	}
	return e, true, nil
}

// Edges lists the registered edges by name.
func (s *Store) Edges(ctx context.Context) ([]hub.EdgeRecord, error) {
	rows, err := s.pool.Query(ctx, edgeColumns+`ORDER BY name`)
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
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(clamped), 0)::bigint FROM edges`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count clamps: %w", err)
	}
	return n, nil
}

// Session returns a dashboard session by the hash of its id.
func (s *Store) Session(ctx context.Context, idHash string) (string, int64, bool, error) {
	var binding string
	var expires int64
	err := s.pool.QueryRow(ctx, `SELECT binding, expires_at FROM sessions WHERE id_hash = $1`, idHash).Scan(&binding, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("read session: %w", err)
	}
	return binding, expires, true, nil
}

// Resolvers returns every stored resolver version.
func (s *Store) Resolvers(ctx context.Context) ([]hub.StoredResolver, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, sha256, size, uploaded_at, wasm, calls, failures FROM resolvers ORDER BY name, version`)
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
