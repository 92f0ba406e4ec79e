package edge

// migrations build the edge database. Append only: an existing database runs
// the ones its PRAGMA user_version has not seen.
//
//   - meta: the node id.
//   - containers: definitions, known locally or learnt from the hub.
//   - changes: the local change feed, every version and delete in the order
//     this node recorded it (seq): its own tentative writes, the confirmed
//     versions the hub streams (with their LSN), and the outcome of each of
//     its writes (op "outcome"). A version's body is stored here, once. A
//     local version's id is "<node id>-<seq>", so it needs no counter.
//   - items: one small row per item (tombstones included) pointing at two
//     change rows: the local view (seq: the newest own tentative version if
//     any is pending, else the confirmed one) and the confirmed version
//     (c_seq, c_lsn; 0 if none). pending counts own versions without an
//     outcome yet.
//
// A version is tentative while it has no LSN. changes.tentative marks the
// node's own writes ("written here first"); when one is confirmed its row
// gets its LSN in place (the body is not copied). The outbox is not a table
// of its own: it is this node's own writes without an outcome (tentative =
// 1, resolved = 0), in seq order, found through a partial index.
//
// (2) conflicts: the hub's conflicts feed for this node's scope, as the hub
// streams it (each record's JSON, by conflict id; a settled conflict
// replaces its record); meta 'conflict_seq' is the stream's resume point.
//
// (3) pk_ids replaces the index items_by_pk: the partition key index is
// caught up in batches instead of at every write (see pkindex.go). It holds
// (container, pk, id) for every version recorded in changes up to meta
// 'pk_indexed' (a seq); readers add the changes after that seq.
//
// (4) Secondary indexes for queries (index.go): idx_paths lists each
// container's indexed paths (its indexingPolicy, in order, with the SQLite
// JSON path of each; ready once built); idx holds, for each live item's
// local view and indexed path, the value there when it is null, a boolean,
// a number or a string: t is its type's rank in Cosmos DB's order (1 null,
// 2 boolean, 3 number, 4 string) and v the value (0 for null, 0 or 1 for a
// boolean, a REAL, TEXT). Triggers on items (and on changes, for an item
// row written before its change) keep idx in step with the local view in
// the same transaction as every write.
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
	resolved  INTEGER NOT NULL DEFAULT 0,
	outcome   TEXT NOT NULL DEFAULT '',
	reason    TEXT NOT NULL DEFAULT '',
	body      BLOB
);
CREATE INDEX changes_by_container ON changes (container, seq);
CREATE INDEX changes_outbox ON changes (seq) WHERE tentative = 1 AND resolved = 0;
CREATE TABLE items (
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	version   TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	c_seq     INTEGER NOT NULL DEFAULT 0,
	c_lsn     INTEGER NOT NULL DEFAULT 0,
	pending   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (container, id)
) WITHOUT ROWID;
CREATE INDEX items_by_pk ON items (container, pk, id);
`, `
CREATE TABLE conflicts (
	cid       INTEGER PRIMARY KEY,
	cseq      INTEGER NOT NULL,
	container TEXT NOT NULL,
	status    TEXT NOT NULL,
	record    BLOB NOT NULL
);
CREATE INDEX conflicts_by_container ON conflicts (container, cid);
`, `
DROP INDEX items_by_pk;
CREATE TABLE pk_ids (
	container TEXT NOT NULL,
	pk        TEXT NOT NULL,
	id        TEXT NOT NULL,
	PRIMARY KEY (container, pk, id)
) WITHOUT ROWID;
INSERT INTO pk_ids (container, pk, id)
	SELECT DISTINCT container, pk, id FROM changes WHERE op != 'outcome' ORDER BY 1, 2, 3;
INSERT INTO meta (key, value) SELECT 'pk_indexed', coalesce(max(seq), 0) FROM changes;
`, `
CREATE TABLE idx_paths (
	container TEXT NOT NULL,
	ord       INTEGER NOT NULL,
	path      TEXT NOT NULL,
	jpath     TEXT NOT NULL,
	ready     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (container, path)
) WITHOUT ROWID;
CREATE TABLE idx (
	container TEXT NOT NULL,
	path      TEXT NOT NULL,
	t         INTEGER NOT NULL,
	v         NOT NULL,
	id        TEXT NOT NULL,
	PRIMARY KEY (container, path, t, v, id)
) WITHOUT ROWID;
CREATE INDEX idx_by_id ON idx (container, id);
CREATE TRIGGER idx_item_insert AFTER INSERT ON items
	WHEN NEW.deleted = 0 AND EXISTS (SELECT 1 FROM idx_paths WHERE container = NEW.container)
BEGIN
	INSERT OR IGNORE INTO idx (container, path, t, v, id)
		SELECT NEW.container, path, t, v, NEW.id FROM (SELECT p.path AS path,
			CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
				WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
			CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
				WHEN 'text' THEN json_extract(ch.body, p.jpath) ELSE CAST(json_extract(ch.body, p.jpath) AS REAL) END AS v
		FROM idx_paths p JOIN changes ch ON ch.seq = NEW.seq WHERE p.container = NEW.container) WHERE t IS NOT NULL;
END;
CREATE TRIGGER idx_item_update AFTER UPDATE OF seq, deleted ON items
	WHEN (OLD.seq != NEW.seq OR OLD.deleted != NEW.deleted) AND EXISTS (SELECT 1 FROM idx_paths WHERE container = NEW.container)
BEGIN
	DELETE FROM idx WHERE container = OLD.container AND id = OLD.id;
	INSERT OR IGNORE INTO idx (container, path, t, v, id)
		SELECT NEW.container, path, t, v, NEW.id FROM (SELECT p.path AS path,
			CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
				WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
			CASE json_type(ch.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
				WHEN 'text' THEN json_extract(ch.body, p.jpath) ELSE CAST(json_extract(ch.body, p.jpath) AS REAL) END AS v
		FROM idx_paths p JOIN changes ch ON ch.seq = NEW.seq WHERE p.container = NEW.container) WHERE t IS NOT NULL AND NEW.deleted = 0;
END;
CREATE TRIGGER idx_change_insert AFTER INSERT ON changes
	WHEN NEW.op != 'outcome' AND EXISTS (SELECT 1 FROM idx_paths WHERE container = NEW.container)
		AND EXISTS (SELECT 1 FROM items WHERE container = NEW.container AND id = NEW.id AND seq = NEW.seq AND deleted = 0)
BEGIN
	DELETE FROM idx WHERE container = NEW.container AND id = NEW.id;
	INSERT OR IGNORE INTO idx (container, path, t, v, id)
		SELECT NEW.container, path, t, v, NEW.id FROM (SELECT p.path AS path,
			CASE json_type(NEW.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
				WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
			CASE json_type(NEW.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
				WHEN 'text' THEN json_extract(NEW.body, p.jpath) ELSE CAST(json_extract(NEW.body, p.jpath) AS REAL) END AS v
		FROM idx_paths p WHERE p.container = NEW.container) WHERE t IS NOT NULL;
END;
CREATE TRIGGER idx_item_delete AFTER DELETE ON items
	WHEN EXISTS (SELECT 1 FROM idx_paths WHERE container = OLD.container)
BEGIN
	DELETE FROM idx WHERE container = OLD.container AND id = OLD.id;
END;
`}
