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
`}
