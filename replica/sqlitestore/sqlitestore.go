// Package sqlitestore opens edgesync's SQLite databases (modernc.org/sqlite,
// no cgo) the way every engine needs them: WAL mode, a write pool of exactly
// one connection, a separate read pool, a chosen durability, schema
// migrations applied in order under PRAGMA user_version, and WAL checkpoints
// run by a background goroutine instead of inside commits.
//
// Why background checkpoints: SQLite's automatic checkpoint runs in the
// committing connection once the WAL passes 1000 pages, so every few hundred
// writes one commit also copies the WAL into the database and fsyncs it; that
// commit's caller waits for it. Here a separate connection runs PASSIVE
// checkpoints (which block neither readers nor the writer) every
// CheckpointInterval, and a TRUNCATE checkpoint when the WAL has grown past
// MaxWALBytes anyway (long readers can hold a passive one back).
//
// One detail keeps commits cheap: SQLite rewinds the WAL to its start (and
// commits then overwrite a file of unchanged size, which fsyncs much faster
// than appending) only when a write transaction begins with every frame
// already checkpointed. Under steady writes a background checkpoint never
// quite catches up, so the WAL would only grow. After each background
// checkpoint the writer therefore checkpoints the few frames written since,
// on its own connection, just before its next transaction (BeforeWrite).
//
// With DurabilityFull the write connection also gathers each commit's WAL
// frames into one write at the commit's sync (walbuf.go).
package sqlitestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Durability levels. They set PRAGMA synchronous of the write connection
// (WAL mode).
const (
	// DurabilityFull fsyncs the WAL at every commit: an acknowledged write
	// survives a process crash and a power loss. The default.
	DurabilityFull = "full"
	// DurabilityNormal fsyncs only at checkpoints: an acknowledged write
	// survives a process crash (kill -9) but the last ones may roll back
	// after a power loss or kernel panic.
	DurabilityNormal = "normal"
)

// Options configure Open.
type Options struct {
	Durability  string // DurabilityFull (default) or DurabilityNormal
	ReadConns   int    // size of the read pool; default 2*GOMAXPROCS, at least 4
	BusyTimeout int    // milliseconds; default 5000
	// CheckpointInterval is how often the background checkpointer runs.
	// Default 250ms.
	CheckpointInterval time.Duration
	// MaxWALBytes is the WAL size above which the checkpointer truncates the
	// WAL even if that has to wait for readers. Default 64 MiB.
	MaxWALBytes int64
	// Logger reports the schema upgrade of an existing database, which
	// may rebuild tables and take a while. Default: discard.
	Logger *slog.Logger
}

// DB is a SQLite database with its two pools.
type DB struct {
	Write *sql.DB // exactly one connection: every write goes through it
	Read  *sql.DB // query-only connections for concurrent reads
	Path  string

	ckpt   *sql.DB // one connection for the checkpointer
	opt    Options
	stop   chan struct{}
	done   chan struct{}
	ckptMu sync.Mutex
	stats  CheckpointStats
	tail   atomic.Bool // a background checkpoint finished: the writer may rewind the WAL
}

// CheckpointStats count the background checkpointer's work.
type CheckpointStats struct {
	Runs      int64 // checkpoints run
	Truncates int64 // of which TRUNCATE because the WAL was over MaxWALBytes
	Tails     int64 // tail checkpoints run by the writer (BeforeWrite)
	Errors    int64
	LastError string
}

// Open opens (creating if needed) the database at path and applies the
// migrations that user_version says are missing, each in its own transaction.
func Open(ctx context.Context, path string, opt Options, migrations []string) (*DB, error) {
	sync := "FULL"
	switch opt.Durability {
	case "", DurabilityFull:
	case DurabilityNormal:
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("durability %q: want %q or %q", opt.Durability, DurabilityFull, DurabilityNormal)
	}
	if opt.BusyTimeout <= 0 {
		opt.BusyTimeout = 5000
	}
	if opt.CheckpointInterval <= 0 {
		opt.CheckpointInterval = 250 * time.Millisecond
	}
	if opt.MaxWALBytes <= 0 {
		opt.MaxWALBytes = 64 << 20
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	pragmas := url.Values{}
	pragmas.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opt.BusyTimeout))
	pragmas.Add("_pragma", "journal_mode(WAL)")
	pragmas.Add("_pragma", "synchronous("+sync+")")
	pragmas.Add("_pragma", "foreign_keys(ON)")
	pragmas.Add("_pragma", "cache_size(-16000)")
	pragmas.Add("_pragma", "wal_autocheckpoint(0)")
	pragmas.Add("_pragma", "temp_store(MEMORY)")
	pragmas.Add("_txlock", "immediate")
	if sync == "FULL" {
		// Every commit syncs the WAL: the writer may gather its WAL writes
		// (walbuf.go).
		if err := registerWALBuf(); err != nil {
			return nil, err
		}
		pragmas.Add("vfs", WALBufVFS)
	}
	w, err := sql.Open("sqlite", base+"?"+pragmas.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, migrations, opt.Logger); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	rp := url.Values{}
	rp.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opt.BusyTimeout))
	rp.Add("_pragma", "query_only(1)")
	rp.Add("_pragma", "cache_size(-16000)")
	r, err := sql.Open("sqlite", base+"?"+rp.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(opt.ReadConns)
	r.SetMaxIdleConns(opt.ReadConns)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s for reading: %w", path, err)
	}
	cp := url.Values{}
	cp.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opt.BusyTimeout))
	cp.Add("_pragma", "synchronous(FULL)")
	c, err := sql.Open("sqlite", base+"?"+cp.Encode())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s for checkpoints: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxIdleTime(0)
	db := &DB{Write: w, Read: r, Path: path, ckpt: c, opt: opt, stop: make(chan struct{}), done: make(chan struct{})}
	go db.checkpointer()
	return db, nil
}

// Close stops the checkpointer, checkpoints the whole WAL and closes the
// pools.
func (db *DB) Close() error {
	close(db.stop)
	<-db.done
	_, cerr := db.ckpt.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(cerr, db.ckpt.Close(), db.Read.Close(), db.Write.Close())
}

// BeforeWrite is called by the owner of the write connection before it
// begins a transaction. After a background checkpoint it checkpoints the
// frames written since on conn, so that the transaction starts on a fully
// checkpointed WAL and SQLite rewinds it.
func (db *DB) BeforeWrite(ctx context.Context, conn *sql.Conn) error {
	if !db.tail.CompareAndSwap(true, false) {
		return nil
	}
	var busy, logPages, done int
	err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &done)
	db.ckptMu.Lock()
	db.stats.Tails++
	if err != nil {
		db.stats.Errors++
		db.stats.LastError = err.Error()
	}
	db.ckptMu.Unlock()
	if err != nil {
		return fmt.Errorf("tail checkpoint: %w", err)
	}
	return nil
}

// CheckpointStats returns a copy of the checkpointer's counters.
func (db *DB) CheckpointStats() CheckpointStats {
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	return db.stats
}

func (db *DB) checkpointer() {
	defer close(db.done)
	t := time.NewTicker(db.opt.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		mode := "PASSIVE"
		if fi, err := os.Stat(db.Path + "-wal"); err == nil && fi.Size() > db.opt.MaxWALBytes {
			mode = "TRUNCATE"
		}
		var busy, logPages, done int
		err := db.ckpt.QueryRow("PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logPages, &done)
		if err == nil && busy == 0 && logPages > 0 {
			db.tail.Store(true)
		}
		db.ckptMu.Lock()
		db.stats.Runs++
		if mode == "TRUNCATE" {
			db.stats.Truncates++
		}
		if err != nil {
			db.stats.Errors++
			db.stats.LastError = err.Error()
		}
		db.ckptMu.Unlock()
	}
}

func migrate(ctx context.Context, db *sql.DB, migrations []string, log *slog.Logger) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade the binary", version, len(migrations))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	upgrade, start := version > 0 && version < len(migrations), time.Now()
	if upgrade {
		log.Info("upgrading the database schema", "from", version, "to", len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if upgrade {
		log.Info("database schema upgraded", "to", len(migrations), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// MetaID returns the value of key in the meta table, generating it first as
// prefix plus 16 random hex digits: a node's identity, made once and kept.
func MetaID(ctx context.Context, db *sql.DB, key, prefix string) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id = prefix + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, key, id); err != nil {
		return "", err
	}
	return id, nil
}
