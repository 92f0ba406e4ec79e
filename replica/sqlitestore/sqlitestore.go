// Package sqlitestore opens edgesync's SQLite databases (modernc.org/sqlite,
// no cgo) the way every engine needs them: WAL mode, a write pool of exactly
// one connection, a separate read pool, a chosen durability, and schema
// migrations applied in order under PRAGMA user_version.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Durability levels. They map to PRAGMA synchronous in WAL mode.
const (
	// DurabilityFull fsyncs the WAL at every commit: an acknowledged write
	// survives a process crash and a power loss. The default.
	DurabilityFull = "full"
	// DurabilityNormal fsyncs only at checkpoints: an acknowledged write
	// survives a process crash (kill -9) but the last commits may roll back
	// after a power loss or kernel panic.
	DurabilityNormal = "normal"
)

// Options configure Open.
type Options struct {
	Durability  string // DurabilityFull (default) or DurabilityNormal
	ReadConns   int    // size of the read pool; default 2*GOMAXPROCS, at least 4
	BusyTimeout int    // milliseconds; default 5000
}

// DB is a SQLite database with its two pools.
type DB struct {
	Write *sql.DB // exactly one connection: every write goes through it
	Read  *sql.DB // query-only connections for concurrent reads
	Path  string
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
	pragmas.Add("_txlock", "immediate")
	w, err := sql.Open("sqlite", base+"?"+pragmas.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, migrations); err != nil {
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
	return &DB{Write: w, Read: r, Path: path}, nil
}

// Close closes both pools after a final passive checkpoint.
func (db *DB) Close() error {
	_, cerr := db.Write.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	return errors.Join(cerr, db.Read.Close(), db.Write.Close())
}

func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade the binary", version, len(migrations))
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
	return nil
}
