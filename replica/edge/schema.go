package edge

// migrations build the edge database. Append only: an existing database runs
// the ones its PRAGMA user_version has not seen.
//
//   - meta: node id and the version counter.
//   - containers: definitions, known locally or learnt from the hub.
//   - items: the local view of every item, one row each, tombstones included.
//   - changes: the local change feed; every version and delete in the order
//     this node recorded it (seq). Bodies are kept so every version can be
//     read back.
//   - outbox: the tentative versions not yet confirmed by a hub, by change seq.
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
CREATE TABLE items (
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	version   TEXT NOT NULL,
	base      TEXT NOT NULL,
	origin    TEXT NOT NULL,
	ts        INTEGER NOT NULL,
	lsn       INTEGER NOT NULL DEFAULT 0,
	crts      INTEGER NOT NULL DEFAULT 0,
	tentative INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	body      BLOB,
	UNIQUE (container, id)
);
CREATE INDEX items_by_pk ON items (container, pk, id);
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
CREATE TABLE outbox (
	seq INTEGER PRIMARY KEY REFERENCES changes (seq)
);
`}
