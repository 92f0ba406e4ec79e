package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// checkEmpty locks the target's hub tables against writers (a hub started
// meanwhile waits for the commit) and refuses a database that holds
// anything: rows in any of them, or heads past zero.
func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	names := []string{"heads"}
	for _, t := range tables {
		names = append(names, t.name)
	}
	names = append(names, leftBehind...)
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock target tables: %w", err)
	}
	var found []string
	for _, name := range names[1:] {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+name+` LIMIT 1000000) AS t`).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", name, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s has %d rows", name, n))
		}
	}
	var lsn, cseq, cid int64
	if err := tx.QueryRow(ctx, `SELECT lsn, cseq, cid FROM heads WHERE id = 1`).Scan(&lsn, &cseq, &cid); err != nil {
		return fmt.Errorf("read heads: %w", err)
	}
	if lsn != 0 || cseq != 0 || cid != 0 {
		found = append(found, fmt.Sprintf("heads at lsn %d, conflict seq %d, conflict id %d", lsn, cseq, cid))
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s", ErrTargetNotEmpty, strings.Join(found, ", "))
	}
	return nil
}

// setHeads sets the target's counters to the copied rows' newest: the
// next LSN, conflict sequence number and conflict id follow the SQLite
// hub's, and new versions are stored after the copied ones.
func setHeads(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE heads SET
		lsn = (SELECT coalesce(max(lsn), 0) FROM log),
		cseq = (SELECT coalesce(max(cseq), 0) FROM conflicts),
		cid = (SELECT coalesce(max(cid), 0) FROM conflicts) WHERE id = 1`); err != nil {
		return fmt.Errorf("set heads: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('versions', 'seq'), coalesce(max(seq), 0) + 1, false) FROM versions`); err != nil {
		return fmt.Errorf("set versions sequence: %w", err)
	}
	return nil
}

// dests returns scan destinations for t's columns: SQLite's when
// sqlite, else PostgreSQL's (booleans differ).
func dests(t table, sqlite bool) []any {
	out := make([]any, len(t.cols))
	for i, c := range t.cols {
		switch c.kind {
		case kindInt:
			out[i] = new(int64)
		case kindText:
			out[i] = new(string)
		case kindBlob:
			out[i] = new([]byte)
		case kindBool:
			if sqlite {
				out[i] = new(int64)
			} else {
				out[i] = new(bool)
			}
		}
	}
	return out
}

// values reads scanned destinations into vals, as PostgreSQL takes them.
func values(dest, vals []any) []any {
	vals = vals[:0]
	for _, d := range dest {
		switch d := d.(type) {
		case *int64:
			vals = append(vals, *d)
		case *string:
			vals = append(vals, *d)
		case *[]byte:
			vals = append(vals, *d)
			*d = nil
		case *bool:
			vals = append(vals, *d)
		}
	}
	return vals
}

// rowSource streams SQLite rows into COPY, hashing each.
type rowSource struct {
	rows   *sql.Rows
	dest   []any
	vals   []any
	boolAt []bool // columns SQLite keeps as 0/1 and PostgreSQL as boolean
	sum    *checksum
	prog   *progress
	err    error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	if s.err = s.rows.Scan(s.dest...); s.err != nil {
		return false
	}
	s.vals = values(s.dest, s.vals)
	for i, b := range s.boolAt {
		if b {
			s.vals[i] = s.vals[i].(int64) != 0
		}
	}
	if s.err = s.sum.add(s.vals); s.err != nil {
		return false
	}
	s.prog.tick(s.sum.rows)
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

func (s *rowSource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// copyTable copies t from SQLite to PostgreSQL with COPY and returns the
// checksum of the rows read.
func copyTable(ctx context.Context, src *source, tx pgx.Tx, t table, prog *progress) (*checksum, error) {
	var total int64
	if err := src.QueryRowContext(ctx, `SELECT count(*) FROM `+t.name).Scan(&total); err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	rows, err := src.QueryContext(ctx, t.sqliteQuery())
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	rs := &rowSource{rows: rows, dest: dests(t, true), boolAt: make([]bool, len(t.cols)), sum: newChecksum(), prog: prog}
	for i, c := range t.cols {
		rs.boolAt[i] = c.kind == kindBool
	}
	prog.begin("copy", t.name, total)
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.colNames(), rs)
	if err != nil {
		return nil, err
	}
	if n != rs.sum.rows {
		return nil, fmt.Errorf("COPY wrote %d rows of %d", n, rs.sum.rows)
	}
	prog.end(rs.sum.rows)
	return rs.sum, nil
}

// readBack reads t from PostgreSQL in key order and returns its checksum.
func readBack(ctx context.Context, tx pgx.Tx, t table, prog *progress) (*checksum, error) {
	var total int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+t.name).Scan(&total); err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	prog.begin("verify", t.name, total)
	rows, err := tx.Query(ctx, t.postgresQuery())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	sum := newChecksum()
	dest := dests(t, false)
	var vals []any
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		vals = values(dest, vals)
		if err := sum.add(vals); err != nil {
			return nil, err
		}
		prog.tick(sum.rows)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	prog.end(sum.rows)
	return sum, nil
}

// progress writes a line when a table starts and ends, and every
// interval in between.
type progress struct {
	w     io.Writer
	every time.Duration

	phase, table string
	total        int64
	start, last  time.Time
}

func (p *progress) line(format string, args ...any) {
	if p.w != nil {
		fmt.Fprintf(p.w, "migrate: "+format+"\n", args...)
	}
}

func (p *progress) begin(phase, table string, total int64) {
	p.phase, p.table, p.total = phase, table, total
	p.start = time.Now()
	p.last = p.start
}

func (p *progress) tick(n int64) {
	if p.w == nil || n%256 != 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(n) / float64(p.total)
	}
	p.line("%s %s: %d/%d rows (%.0f%%), %.0f rows/s", p.phase, p.table, n, p.total, pct, float64(n)/now.Sub(p.start).Seconds())
}

func (p *progress) end(n int64) {
	d := time.Since(p.start)
	rate := 0.0
	if d > 0 {
		rate = float64(n) / d.Seconds()
	}
	p.line("%s %s: %d/%d rows in %s, %.0f rows/s", p.phase, p.table, n, p.total, d.Round(time.Millisecond), rate)
}
