// Package migrate moves a hub from SQLite (its data directory's hub.db)
// into an empty PostgreSQL database, so that a hub started on that
// database goes on where the SQLite hub stopped: same hub id, same log and
// LSNs, same conflicts and conflict sequence numbers, same edges with their
// token hashes, scopes, node bindings and acknowledged positions, same
// resolvers with every version and their call counts.
//
// The source is read under SQLite's exclusive lock: a hub that has the
// database open holds a shared lock, so a running hub is refused, and no
// hub can open the database while the copy runs. The target is written in
// one PostgreSQL transaction, table by table with COPY, rows streamed from
// SQLite (memory does not grow with the hub). Before the transaction
// commits, every table is read back and compared with what was read from
// SQLite: row counts and a SHA-256 over the rows in key order (checksum.go).
// A mismatch, or any error, rolls the transaction back and leaves the target
// as it was: empty, with the schema.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
)

var (
	// ErrNoSource: the data directory holds no hub database.
	ErrNoSource = errors.New("no hub database")
	// ErrSourceInUse: a process (a running hub) has the hub database open.
	ErrSourceInUse = errors.New("hub database is in use")
	// ErrSourceSchema: the hub database's schema is not this binary's.
	ErrSourceSchema = errors.New("hub database schema")
	// ErrTargetNotEmpty: the PostgreSQL database already holds a hub.
	ErrTargetNotEmpty = errors.New("target database is not empty")
	// ErrMismatch: what was read back from PostgreSQL differs from SQLite.
	ErrMismatch = errors.New("verification failed")
)

// DefaultProgressEvery is how often progress is reported during a table.
const DefaultProgressEvery = time.Second

// Config configures Run.
type Config struct {
	Dir string // the SQLite hub's data directory
	URL string // the target PostgreSQL database
	// Progress receives a line per table copied or verified and, during
	// a long one, one every ProgressEvery. Nil: none.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// TableReport is one table's verification.
type TableReport struct {
	Name           string
	SQLiteRows     int64
	PostgresRows   int64
	SQLiteSHA256   string
	PostgresSHA256 string
}

// OK says both sides agree.
func (t TableReport) OK() bool {
	return t.SQLiteRows == t.PostgresRows && t.SQLiteSHA256 == t.PostgresSHA256
}

// Report is what Run did.
type Report struct {
	HubID    string
	Heads    hub.Heads // the SQLite hub's, and now the target's
	Tables   []TableReport
	Rows     int64         // rows copied, every table
	Copy     time.Duration // reading SQLite and writing PostgreSQL
	Verify   time.Duration // reading PostgreSQL back
	Mismatch []string      // what verification found different
}

// RowsPerSecond is the copy's rate.
func (r *Report) RowsPerSecond() float64 {
	if r.Copy <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Copy.Seconds()
}

// Print writes the verification table and the totals.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%-10s %10s %10s  %-16s  %s\n", "table", "sqlite", "postgres", "sqlite sha256", "postgres sha256")
	for _, t := range r.Tables {
		mark := "ok"
		if !t.OK() {
			mark = "MISMATCH"
		}
		fmt.Fprintf(w, "%-10s %10d %10d  %-16.16s  %-16.16s  %s\n", t.Name, t.SQLiteRows, t.PostgresRows, t.SQLiteSHA256, t.PostgresSHA256, mark)
	}
	fmt.Fprintf(w, "hub %s: lsn %d, conflict seq %d; %d rows copied in %s (%.0f rows/s), verified in %s\n",
		r.HubID, r.Heads.LSN, r.Heads.Cseq, r.Rows, r.Copy.Round(time.Millisecond), r.RowsPerSecond(), r.Verify.Round(time.Millisecond))
}

// beforeVerify, when set (by tests), runs in the target's transaction
// between the copy and the verification.
var beforeVerify func(ctx context.Context, tx pgx.Tx) error

// Run copies the SQLite hub in cfg.Dir into the PostgreSQL database at
// cfg.URL and verifies the copy. It returns the report with ErrMismatch
// when verification found a difference; the target is then left empty.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Dir == "" || cfg.URL == "" {
		return nil, errors.New("migrate: data directory and PostgreSQL URL are both required")
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = DefaultProgressEvery
	}
	prog := &progress{w: cfg.Progress, every: cfg.ProgressEvery}
	src, err := openSource(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	rep := &Report{}
	if err := src.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'hub_id'`).Scan(&rep.HubID); err != nil {
		return nil, fmt.Errorf("read hub id: %w", err)
	}
	if err := src.QueryRowContext(ctx, `SELECT coalesce(max(lsn), 0) FROM log`).Scan(&rep.Heads.LSN); err != nil {
		return nil, fmt.Errorf("read log head: %w", err)
	}
	if err := src.QueryRowContext(ctx, `SELECT coalesce(max(cseq), 0) FROM conflicts`).Scan(&rep.Heads.Cseq); err != nil {
		return nil, fmt.Errorf("read conflicts head: %w", err)
	}
	prog.line("target: applying the PostgreSQL schema")
	if err := pghub.Migrate(ctx, cfg.URL, nil); err != nil {
		return nil, fmt.Errorf("target schema: %w", err)
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := checkEmpty(ctx, tx); err != nil {
		return nil, err
	}

	start := time.Now()
	sums := make([]*checksum, len(tables))
	for i, t := range tables {
		if sums[i], err = copyTable(ctx, src, tx, t, prog); err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.name, err)
		}
		rep.Rows += sums[i].rows
	}
	if err := setHeads(ctx, tx); err != nil {
		return nil, err
	}
	rep.Copy = time.Since(start)

	if beforeVerify != nil {
		if err := beforeVerify(ctx, tx); err != nil {
			return nil, err
		}
	}
	start = time.Now()
	for i, t := range tables {
		got, err := readBack(ctx, tx, t, prog)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.name, err)
		}
		tr := TableReport{Name: t.name, SQLiteRows: sums[i].rows, PostgresRows: got.rows, SQLiteSHA256: sums[i].sum(), PostgresSHA256: got.sum()}
		rep.Tables = append(rep.Tables, tr)
		if !tr.OK() {
			rep.Mismatch = append(rep.Mismatch, fmt.Sprintf("table %s: %d rows sha256 %s in SQLite, %d rows sha256 %s in PostgreSQL",
				t.name, tr.SQLiteRows, tr.SQLiteSHA256, tr.PostgresRows, tr.PostgresSHA256))
		}
	}
	var lsn, cseq, cid, maxCid int64
	if err := tx.QueryRow(ctx, `SELECT lsn, cseq, cid FROM heads WHERE id = 1`).Scan(&lsn, &cseq, &cid); err != nil {
		return nil, fmt.Errorf("verify heads: %w", err)
	}
	if err := src.QueryRowContext(ctx, `SELECT coalesce(max(cid), 0) FROM conflicts`).Scan(&maxCid); err != nil {
		return nil, fmt.Errorf("verify heads: %w", err)
	}
	if lsn != rep.Heads.LSN || cseq != rep.Heads.Cseq || cid != maxCid {
		rep.Mismatch = append(rep.Mismatch, fmt.Sprintf("heads: lsn %d, conflict seq %d, conflict id %d in SQLite; %d, %d, %d in PostgreSQL",
			rep.Heads.LSN, rep.Heads.Cseq, maxCid, lsn, cseq, cid))
	}
	rep.Verify = time.Since(start)
	if len(rep.Mismatch) > 0 {
		return rep, fmt.Errorf("%w: %s; nothing was committed", ErrMismatch, strings.Join(rep.Mismatch, "; "))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return rep, nil
}

// source is the hub database, on one connection that holds the lock
// until Close.
type source struct {
	*sql.Conn
	db *sql.DB
}

func (s *source) Close() error { return errors.Join(s.Conn.Close(), s.db.Close()) }

// openSource opens the hub database under an exclusive lock.
func openSource(ctx context.Context, dir string) (*source, error) {
	path := filepath.Join(dir, sqlitehub.DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoSource, path, err)
	}
	// busy_timeout(0): a lock held elsewhere fails at once. In WAL mode a
	// connection holds a shared lock on the database file for as long as
	// it is open; EXCLUSIVE locking mode takes an exclusive one at the
	// first read and keeps it.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(0)")
	q.Add("_pragma", "locking_mode(EXCLUSIVE)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	src := &source{Conn: conn, db: db}
	fail := func(err error) (*source, error) {
		src.Close()
		return nil, err
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		if se := (*sqlite.Error)(nil); errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY {
			return fail(fmt.Errorf("%w: %s is open in another process (stop the hub first)", ErrSourceInUse, path))
		}
		return fail(fmt.Errorf("read %s: %w", path, err))
	}
	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fail(fmt.Errorf("read %s: %w", path, err))
	}
	if want := len(hub.SQLiteMigrations()); version != want {
		return fail(fmt.Errorf("%w: %s is at version %d, this binary's is %d (run this binary's cloudhub serve on it once first)",
			ErrSourceSchema, path, version, want))
	}
	return src, nil
}
