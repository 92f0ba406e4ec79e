package pghub

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgesync/edgesync/replica/hub"
)

// segment holds the writes a transaction has not sent yet, of the
// transaction itself (the first) or of an open Try, in chunks: the rows of
// a chunk are sent first, one multi-row INSERT (or COPY, copy.go) per
// table, then its statements in order; a row kept after a statement starts a new chunk. So
// the database sees the writes in an order equivalent to the one they were
// made in: rows of one chunk go to different tables or are distinct rows
// of one (an item's later row replaces its earlier one in the chunk), and a
// statement runs after every row kept before it.
type segment struct {
	chunks []*chunk
	// emitted says its SAVEPOINT was sent (Try segments only).
	emitted bool
	// undo restores the cache as it was when the segment began.
	undo []undoEntry
	// The transaction's numbers and lock state when the segment began.
	locked, took   bool
	lsn, cseq, cid int64
}

func newSegment() *segment { return &segment{} }

// chunk is rows and then statements; see segment.
type chunk struct {
	logs     []hub.LogRecord
	versions []hub.VersionRecord
	items    []itemRow
	itemAt   map[hub.ItemKey]int
	stmts    []stmt
}

type itemRow struct {
	container, id, pk, version string
	lsn                        int64
	deleted                    bool
}

type stmt struct {
	q     string
	args  []any
	check func(pgconn.CommandTag) error // nil: any result
}

// rows returns the chunk to keep a row in.
func (s *segment) rows() *chunk {
	if n := len(s.chunks); n > 0 && len(s.chunks[n-1].stmts) == 0 {
		return s.chunks[n-1]
	}
	c := &chunk{}
	s.chunks = append(s.chunks, c)
	return c
}

func (s *segment) log(e hub.LogRecord) {
	c := s.rows()
	c.logs = append(c.logs, e)
}

func (s *segment) version(v hub.VersionRecord) {
	c := s.rows()
	c.versions = append(c.versions, v)
}

func (s *segment) item(r itemRow) { s.rows().item(r) }

func (c *chunk) item(r itemRow) {
	k := hub.ItemKey{Container: r.container, ID: r.id}
	if i, ok := c.itemAt[k]; ok {
		c.items[i] = r
		return
	}
	if c.itemAt == nil {
		c.itemAt = make(map[hub.ItemKey]int)
	}
	c.itemAt[k] = len(c.items)
	c.items = append(c.items, r)
}

// stmt keeps a statement, run after every write kept before it.
func (s *segment) stmt(q string, args ...any) { s.check(nil, q, args...) }

// check keeps a statement whose result check accepts or fails (failing
// what sends it, as a failed statement does).
func (s *segment) check(check func(pgconn.CommandTag) error, q string, args ...any) {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, &chunk{})
	}
	c := s.chunks[len(s.chunks)-1]
	c.stmts = append(c.stmts, stmt{q, args, check})
}

// absorb takes in the kept writes of a Try that succeeded inside s, and,
// if s is a Try's (nested), what undoes their cache changes.
func (s *segment) absorb(child *segment, nested bool) {
	if nested {
		s.undo = append(s.undo, child.undo...)
	}
	chunks := child.chunks
	if len(chunks) > 0 && len(s.chunks) > 0 && len(s.chunks[len(s.chunks)-1].stmts) == 0 {
		last, first := s.chunks[len(s.chunks)-1], chunks[0]
		last.logs = append(last.logs, first.logs...)
		last.versions = append(last.versions, first.versions...)
		for _, r := range first.items {
			last.item(r)
		}
		last.stmts = first.stmts
		chunks = chunks[1:]
	}
	s.chunks = append(s.chunks, chunks...)
}

// queue queues the segment's kept writes in o and forgets them.
func (s *segment) queue(o *sends) {
	for _, c := range s.chunks {
		c.queue(o)
	}
	s.chunks = s.chunks[:0]
}

// sends are what one flush sends, in order: batches of statements and,
// between them, COPYs (copy.go).
type sends struct{ steps []sendStep }

// sendStep is a batch, or else a COPY of rows rows.
type sendStep struct {
	b    *pgx.Batch
	copy copyData
	rows int
}

// batch is the batch to queue the next statement in.
func (o *sends) batch() *pgx.Batch {
	if n := len(o.steps); n > 0 && o.steps[n-1].b != nil {
		return o.steps[n-1].b
	}
	o.steps = append(o.steps, sendStep{b: &pgx.Batch{}})
	return o.steps[len(o.steps)-1].b
}

func (o *sends) copyRows(c copyData, rows int) {
	o.steps = append(o.steps, sendStep{copy: c, rows: rows})
}

const (
	insertLog = `INSERT INTO log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[])`
	insertVersions = `INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
			$9::bytea[], $10::text[], $11::bigint[], $12::text[], $13::bigint[])`
	upsertItems = `INSERT INTO items (container, id, pk, version, lsn, deleted)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::boolean[])
		ON CONFLICT (container, id) DO UPDATE SET pk = excluded.pk, version = excluded.version, lsn = excluded.lsn, deleted = excluded.deleted`
)

func (c *chunk) queue(o *sends) {
	if n := len(c.logs); n >= copyMinRows {
		o.copyRows(copyLog(c.logs), n)
	} else if n > 0 {
		lsn, ts, crts := make([]int64, n), make([]int64, n), make([]int64, n)
		var cols [10]textArray
		for i := range cols {
			cols[i] = make(textArray, n)
		}
		for i, e := range c.logs {
			lsn[i], ts[i], crts[i] = e.LSN, e.TS, e.CRTS
			cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i] = e.Container, e.ID, e.PK, e.Op, e.Version
			cols[5][i], cols[6][i], cols[7][i], cols[8][i], cols[9][i] = e.Base, e.Origin, e.Policy, e.Resolver, e.Resolves
		}
		o.batch().Queue(insertLog, lsn, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], ts, crts, cols[7], cols[8], cols[9])
	}
	if n := len(c.versions); n >= copyMinRows {
		o.copyRows(copyVersions(c.versions), n)
	} else if n > 0 {
		ts, lsn, cid := make([]int64, n), make([]int64, n), make([]int64, n)
		body := make(byteaArray, n)
		var cols [9]textArray
		for i := range cols {
			cols[i] = make(textArray, n)
		}
		for i, v := range c.versions {
			ts[i], lsn[i], cid[i], body[i] = v.TS, v.LSN, v.ConflictID, v.Body
			cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i] = v.Version, v.Container, v.ID, v.PK, v.Op
			cols[5][i], cols[6][i], cols[7][i], cols[8][i] = v.Base, v.Origin, v.Outcome, v.Reason
		}
		o.batch().Queue(insertVersions, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], ts, body, cols[7], lsn, cols[8], cid)
	}
	if n := len(c.items); n > 0 {
		lsn, deleted := make([]int64, n), make([]bool, n)
		var cols [4]textArray
		for i := range cols {
			cols[i] = make(textArray, n)
		}
		for i, r := range c.items {
			lsn[i], deleted[i] = r.lsn, r.deleted
			cols[0][i], cols[1][i], cols[2][i], cols[3][i] = r.container, r.id, r.pk, r.version
		}
		o.batch().Queue(upsertItems, cols[0], cols[1], cols[2], cols[3], lsn, deleted)
	}
	for _, s := range c.stmts {
		q := o.batch().Queue(s.q, s.args...)
		if s.check != nil {
			q.Exec(s.check)
		}
	}
}

// cache is what the transaction knows of item heads and stored version ids
// without asking: read by Prefetch or Head, then kept true by its own
// writes. An absent entry is unknown.
type cache struct {
	heads    map[hub.ItemKey]headEntry
	outcomes map[string]outcomeEntry
}

type headEntry struct {
	hd    hub.ItemHead
	found bool
}

// outcomeEntry: found says the version id is stored; exact says p is its
// stored outcome (else the outcome is read when asked for).
type outcomeEntry struct {
	p            hub.PriorOutcome
	found, exact bool
}

// undoEntry restores one cache entry: an item's head or a version's.
type undoEntry struct {
	isHead  bool
	key     hub.ItemKey
	version string
	head    headEntry
	outcome outcomeEntry
	had     bool
}

func (c *cache) clear() {
	if c.heads == nil {
		c.heads, c.outcomes = make(map[hub.ItemKey]headEntry), make(map[string]outcomeEntry)
		return
	}
	clear(c.heads)
	clear(c.outcomes)
}

// setHead sets an item's head, undoably in seg if nested.
func (c *cache) setHead(seg *segment, nested bool, k hub.ItemKey, e headEntry) {
	if nested {
		prev, had := c.heads[k]
		seg.undo = append(seg.undo, undoEntry{isHead: true, key: k, head: prev, had: had})
	}
	c.heads[k] = e
}

// setOutcome sets a version's entry, undoably in seg if nested.
func (c *cache) setOutcome(seg *segment, nested bool, version string, e outcomeEntry) {
	if nested {
		prev, had := c.outcomes[version]
		seg.undo = append(seg.undo, undoEntry{version: version, outcome: prev, had: had})
	}
	c.outcomes[version] = e
}

// undo restores the cache entries changed by undo's entries, last first.
func (c *cache) undo(undo []undoEntry) {
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		switch {
		case u.isHead && u.had:
			c.heads[u.key] = u.head
		case u.isHead:
			delete(c.heads, u.key)
		case u.had:
			c.outcomes[u.version] = u.outcome
		default:
			delete(c.outcomes, u.version)
		}
	}
}
