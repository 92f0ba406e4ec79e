package pghub

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgesync/edgesync/replica/hub"
)

// The log and versions rows of a chunk of at least copyMinRows are sent
// with COPY ... FROM STDIN in PostgreSQL's binary format instead of an
// INSERT ... SELECT FROM unnest(...) in the batch: the server then inserts
// them a page at a time (heap_multi_insert, one WAL record per page)
// instead of row by row, and parses no arrays. Each COPY is an exchange of
// its own, one round trip, sent in order with the batches around it on the
// transaction's connection.

// copyMinRows is the fewest rows of a table sent by COPY; fewer go in the
// batch, where they cost no round trip. (A variable for the benchmark.)
var copyMinRows = 16

const (
	copyLogSQL      = `COPY log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves) FROM STDIN (FORMAT binary)`
	copyVersionsSQL = `COPY versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id) FROM STDIN (FORMAT binary)`
)

// copyData is a COPY statement and its rows in the binary format.
type copyData struct {
	table, sql string
	data       []byte
}

// copyHeader is the binary format's signature, flags and header extension
// length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyWriter appends rows in COPY's binary format.
type copyWriter struct{ buf []byte }

func newCopyWriter(size int) copyWriter {
	buf := make([]byte, 0, len(copyHeader)+size+2)
	return copyWriter{append(buf, copyHeader...)}
}

func (w *copyWriter) row(fields int) { w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(fields)) }

func (w *copyWriter) text(s string) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *copyWriter) bytea(b []byte) {
	if b == nil {
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0xffffffff) // -1: NULL
		return
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(b)))
	w.buf = append(w.buf, b...)
}

func (w *copyWriter) int8(v int64) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, 8)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(v))
}

// end appends the trailer and returns the data.
func (w *copyWriter) end() []byte { return binary.BigEndian.AppendUint16(w.buf, 0xffff) }

// copyLog is the COPY of log records.
func copyLog(logs []hub.LogRecord) copyData {
	size := 0
	for _, e := range logs {
		size += 2 + 13*4 + 3*8 + len(e.Container) + len(e.ID) + len(e.PK) + len(e.Op) + len(e.Version) + len(e.Base) +
			len(e.Origin) + len(e.Policy) + len(e.Resolver) + len(e.Resolves)
	}
	w := newCopyWriter(size)
	for _, e := range logs {
		w.row(13)
		w.int8(e.LSN)
		w.text(e.Container)
		w.text(e.ID)
		w.text(e.PK)
		w.text(e.Op)
		w.text(e.Version)
		w.text(e.Base)
		w.text(e.Origin)
		w.int8(e.TS)
		w.int8(e.CRTS)
		w.text(e.Policy)
		w.text(e.Resolver)
		w.text(e.Resolves)
	}
	return copyData{"log", copyLogSQL, w.end()}
}

// copyVersions is the COPY of versions.
func copyVersions(vs []hub.VersionRecord) copyData {
	size := 0
	for _, v := range vs {
		size += 2 + 13*4 + 3*8 + len(v.Version) + len(v.Container) + len(v.ID) + len(v.PK) + len(v.Op) + len(v.Base) +
			len(v.Origin) + len(v.Body) + len(v.Outcome) + len(v.Reason)
	}
	w := newCopyWriter(size)
	for _, v := range vs {
		w.row(13)
		w.text(v.Version)
		w.text(v.Container)
		w.text(v.ID)
		w.text(v.PK)
		w.text(v.Op)
		w.text(v.Base)
		w.text(v.Origin)
		w.int8(v.TS)
		w.bytea(v.Body)
		w.text(v.Outcome)
		w.int8(v.LSN)
		w.text(v.Reason)
		w.int8(v.ConflictID)
	}
	return copyData{"versions", copyVersionsSQL, w.end()}
}

// send runs the COPY on conn, in its open transaction; tracer, if it
// traces COPYs, sees it as pgx.Conn.CopyFrom's would be.
func (c copyData) send(ctx context.Context, conn *pgx.Conn, tracer pgx.QueryTracer, rows int) (err error) {
	var tag pgconn.CommandTag
	if ct, ok := tracer.(pgx.CopyFromTracer); ok {
		ctx = ct.TraceCopyFromStart(ctx, conn, pgx.TraceCopyFromStartData{TableName: pgx.Identifier{c.table}})
		defer func() { ct.TraceCopyFromEnd(ctx, conn, pgx.TraceCopyFromEndData{CommandTag: tag, Err: err}) }()
	}
	if tag, err = conn.PgConn().CopyFrom(ctx, bytes.NewReader(c.data), c.sql); err != nil {
		return err
	}
	if got := tag.RowsAffected(); got != int64(rows) {
		return fmt.Errorf("%d rows copied into %s, want %d", got, c.table, rows)
	}
	return nil
}
