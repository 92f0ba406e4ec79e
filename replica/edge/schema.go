package edge

// migrations build the edge database. Append only: an existing database runs
// the ones its PRAGMA user_version has not seen.
//
//   - meta: the node id.
//   - containers: definitions, known locally or learnt from the hub.
//   - changes: the local change feed, every version and delete in the order
//     this node recorded it (seq). A version's body is stored here, once.
//     A local version's id is "<node id>-<seq>", so it needs no counter.
//   - items: the local view, one small row per item (tombstones included)
//     pointing at the change row that holds its current version.
//
// The outbox is not a table of its own: it is this node's tentative changes,
// in seq order (origin = node id, tentative = 1).
var migrations = []string{`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE containers (
	name       TEXT PRIMARY KEY,
	pk_path    TEXT NOT NULL,
	policy     TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE changes (
	seq       INTEGER PRIMARY KEY,
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	op        TEXT NOT NULL,
	version   TEXT NOT NULL,
	base      TEXT NOT NULL,
	origin    TEXT NOT NULL,
	ts        INTEGER NOT NULL,
	lsn       INTEGER NOT NULL DEFAULT 0,
	crts      INTEGER NOT NULL DEFAULT 0,
	tentative INTEGER NOT NULL,
	body      BLOB
);
CREATE INDEX changes_by_container ON changes (container, seq);
CREATE TABLE items (
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	version   TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	PRIMARY KEY (container, id)
) WITHOUT ROWID;
CREATE INDEX items_by_pk ON items (container, pk, id);
`}
