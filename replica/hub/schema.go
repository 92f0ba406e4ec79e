package hub

// migrations build the hub database. Append only.
//
//   - meta: hub id.
//   - containers: definitions; the hub is their authority.
//   - versions: every version the hub has seen, by version id: pushed by an
//     edge (with the outcome it got, so a retried push gets the same answer),
//     written at the hub, or made by a merge. Confirmed versions, losing
//     versions and the bases of later writes all stay readable here.
//   - log: the confirmed versions in LSN order (the all-versions change feed
//     and what edges stream); bodies are in versions.
//   - items: the current confirmed version of every item.
//   - conflicts: the conflicts feed.
//   - edges: registered edges, their token hashes, scopes and sync state.
//   - resolvers (2): uploaded wasm resolvers, every version kept; log and
//     conflicts record the resolver version that decided, and log the
//     version whose unresolved conflict a resolution settled.
//   - (3) indexes for an item's version history and the unresolved count.
//   - (4) conflicts.cseq: a sequence number given to a conflict when it is
//     recorded and again when it is settled, so that edges can follow the
//     conflicts feed (the "conflicts" sync frame) from a resume point.
//   - (5) resolvers.calls, failures: each version's call counts (failures by
//     reason, JSON), saved every resolverCountsEvery and at close, so that
//     they survive restarts.
//   - (6) sessions: dashboard sessions by the SHA-256 of their id, with what
//     they were opened under and when they expire (unix milliseconds).
//   - (7) clamped_ts on versions and log: the hub's receipt time that
//     conflict decisions took for a pushed _ts from the future (0: the _ts
//     itself decided); on edges, each edge's clock skew as last measured
//     (milliseconds, the edge's clock minus the hub's), when, and how many
//     of its versions were clamped.
//   - (8) rejected versions are no longer stored (their ids could be any
//     node's, the hub's included, and blocked that node's next write): the
//     ones stored before are deleted.
//   - (9) edges_by_node: an edge's first hello looks up whether another edge
//     is bound to its node id; without the index that read scanned every
//     edge, and 10,000 edges connecting for the first time cost the writer
//     10,000 scans of 10,000 rows.
//   - (10) containers.indexing: the container's indexing policy as JSON ("":
//     none), kept with its definition and sent to edges with it.
//   - (11) indexes for queries, as on edges: idx_paths lists each
//     container's indexed paths (in policy order, with the SQLite JSON path
//     of each; ready once the items written before the path was added are
//     indexed); idx holds, for each live item and indexed path whose value
//     is null, a boolean, a number or a string, the value's type rank t
//     (1 null, 2 boolean, 3 number, 4 string) and value v (0/1 for null
//     and booleans, a REAL, a TEXT). Triggers keep idx in step with items
//     and versions in the transaction that writes them: an item made
//     current (inserted, or its version or deleted flag changed) and a
//     version stored after the item was pointed at it. Both orders happen.
//   - (12) push_order: per edge node id, the counter of its version held back
//     for being pushed before the version it was written over, and when
//     (Hub.Push).
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
CREATE TABLE versions (
	version     TEXT PRIMARY KEY,
	container   TEXT NOT NULL,
	id          TEXT NOT NULL,
	pk          TEXT NOT NULL,
	op          TEXT NOT NULL,
	base        TEXT NOT NULL,
	origin      TEXT NOT NULL,
	ts          INTEGER NOT NULL,
	body        BLOB,
	outcome     TEXT NOT NULL DEFAULT '',
	lsn         INTEGER NOT NULL DEFAULT 0,
	reason      TEXT NOT NULL DEFAULT '',
	conflict_id INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE log (
	lsn       INTEGER PRIMARY KEY,
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	op        TEXT NOT NULL,
	version   TEXT NOT NULL,
	base      TEXT NOT NULL,
	origin    TEXT NOT NULL,
	ts        INTEGER NOT NULL,
	crts      INTEGER NOT NULL,
	policy    TEXT NOT NULL
);
CREATE INDEX log_by_container ON log (container, lsn);
CREATE TABLE items (
	container TEXT NOT NULL,
	id        TEXT NOT NULL,
	pk        TEXT NOT NULL,
	version   TEXT NOT NULL,
	lsn       INTEGER NOT NULL,
	deleted   INTEGER NOT NULL,
	PRIMARY KEY (container, id)
) WITHOUT ROWID;
CREATE INDEX items_by_pk ON items (container, pk, id);
CREATE TABLE conflicts (
	cid        INTEGER PRIMARY KEY,
	container  TEXT NOT NULL,
	doc_id     TEXT NOT NULL,
	pk         TEXT NOT NULL,
	kind       TEXT NOT NULL,
	status     TEXT NOT NULL,
	policy     TEXT NOT NULL,
	loser      TEXT NOT NULL,
	incoming   TEXT NOT NULL,
	existing   TEXT NOT NULL,
	base       TEXT NOT NULL,
	winner_lsn INTEGER NOT NULL,
	reason     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX conflicts_by_container ON conflicts (container, cid);
CREATE TABLE edges (
	name       TEXT PRIMARY KEY,
	token_hash TEXT NOT NULL UNIQUE,
	scope      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	node_id    TEXT NOT NULL DEFAULT '',
	last_seen  INTEGER NOT NULL DEFAULT 0,
	acked_lsn  INTEGER NOT NULL DEFAULT 0,
	pending    INTEGER NOT NULL DEFAULT 0
);
`, `
CREATE TABLE resolvers (
	name        TEXT NOT NULL,
	version     INTEGER NOT NULL,
	sha256      TEXT NOT NULL,
	size        INTEGER NOT NULL,
	uploaded_at INTEGER NOT NULL,
	wasm        BLOB NOT NULL,
	PRIMARY KEY (name, version)
);
ALTER TABLE log ADD COLUMN resolver TEXT NOT NULL DEFAULT '';
ALTER TABLE log ADD COLUMN resolves TEXT NOT NULL DEFAULT '';
ALTER TABLE conflicts ADD COLUMN resolver TEXT NOT NULL DEFAULT '';
`, `
CREATE INDEX versions_by_item ON versions (container, id);
CREATE INDEX conflicts_by_status ON conflicts (status, container);
`, `
ALTER TABLE conflicts ADD COLUMN cseq INTEGER NOT NULL DEFAULT 0;
UPDATE conflicts SET cseq = cid;
CREATE INDEX conflicts_by_cseq ON conflicts (cseq);
`, `
ALTER TABLE resolvers ADD COLUMN calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resolvers ADD COLUMN failures TEXT NOT NULL DEFAULT '{}';
`, `
CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY,
	binding    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
`, `
ALTER TABLE versions ADD COLUMN clamped_ts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE log ADD COLUMN clamped_ts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN clock_measured_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE edges ADD COLUMN clamped INTEGER NOT NULL DEFAULT 0;
`, `
DELETE FROM versions WHERE outcome = 'rejected';
`, `
CREATE INDEX edges_by_node ON edges (node_id);
`, `
ALTER TABLE containers ADD COLUMN indexing TEXT NOT NULL DEFAULT '';
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
			CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
				WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
			CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
				WHEN 'text' THEN json_extract(vr.body, p.jpath) ELSE CAST(json_extract(vr.body, p.jpath) AS REAL) END AS v
		FROM idx_paths p JOIN versions vr ON vr.version = NEW.version WHERE p.container = NEW.container AND vr.body IS NOT NULL) WHERE t IS NOT NULL;
END;
CREATE TRIGGER idx_item_update AFTER UPDATE OF version, deleted ON items
	WHEN (OLD.version != NEW.version OR OLD.deleted != NEW.deleted) AND EXISTS (SELECT 1 FROM idx_paths WHERE container = NEW.container)
BEGIN
	DELETE FROM idx WHERE container = OLD.container AND id = OLD.id;
	INSERT OR IGNORE INTO idx (container, path, t, v, id)
		SELECT NEW.container, path, t, v, NEW.id FROM (SELECT p.path AS path,
			CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2
				WHEN 'integer' THEN 3 WHEN 'real' THEN 3 WHEN 'text' THEN 4 END AS t,
			CASE json_type(vr.body, p.jpath) WHEN 'null' THEN 0 WHEN 'true' THEN 1 WHEN 'false' THEN 0
				WHEN 'text' THEN json_extract(vr.body, p.jpath) ELSE CAST(json_extract(vr.body, p.jpath) AS REAL) END AS v
		FROM idx_paths p JOIN versions vr ON vr.version = NEW.version WHERE p.container = NEW.container AND vr.body IS NOT NULL)
		WHERE t IS NOT NULL AND NEW.deleted = 0;
END;
CREATE TRIGGER idx_version_insert AFTER INSERT ON versions
	WHEN NEW.body IS NOT NULL AND EXISTS (SELECT 1 FROM idx_paths WHERE container = NEW.container)
		AND EXISTS (SELECT 1 FROM items WHERE container = NEW.container AND id = NEW.id AND version = NEW.version AND deleted = 0)
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
`, `
CREATE TABLE push_order (
	node_id TEXT PRIMARY KEY,
	held    INTEGER NOT NULL,
	held_at INTEGER NOT NULL
) WITHOUT ROWID;
`}
