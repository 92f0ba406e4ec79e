package pghub

// migrations build the hub's PostgreSQL schema, in order; each is applied
// once, recorded in schema_migrations. Append only.
//
// The tables are the SQLite backend's (replica/hub/schema.go), with three
// differences: heads, one row holding the newest LSN, conflict sequence
// number and conflict id, which a transaction locks before it hands out
// any (so that numbers are taken by one transaction at a time, and a
// rolled-back one gives them back: a sequence would leave gaps);
// versions.seq, the order versions were stored in (SQLite's rowid); and
// the C collation on the text columns lists are ordered by, so that ids
// sort by their bytes as in SQLite. The second migration adds the tier
// (tier.go): hubs, the lease, takeovers, the queue of forwarded decisions
// and the hub each edge is connected to.
var migrations = []string{`
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);
CREATE TABLE heads (
	id   int PRIMARY KEY CHECK (id = 1),
	lsn  bigint NOT NULL,
	cseq bigint NOT NULL,
	cid  bigint NOT NULL
);
INSERT INTO heads (id, lsn, cseq, cid) VALUES (1, 0, 0, 0);
CREATE TABLE containers (
	name       text COLLATE "C" PRIMARY KEY,
	pk_path    text NOT NULL,
	policy     text NOT NULL,
	updated_at bigint NOT NULL
);
CREATE TABLE versions (
	seq         bigserial NOT NULL,
	version     text PRIMARY KEY,
	container   text NOT NULL,
	id          text NOT NULL,
	pk          text NOT NULL,
	op          text NOT NULL,
	base        text NOT NULL,
	origin      text NOT NULL,
	ts          bigint NOT NULL,
	body        bytea,
	outcome     text NOT NULL DEFAULT '',
	lsn         bigint NOT NULL DEFAULT 0,
	reason      text NOT NULL DEFAULT '',
	conflict_id bigint NOT NULL DEFAULT 0,
	clamped_ts  bigint NOT NULL DEFAULT 0
);
CREATE INDEX versions_by_item ON versions (container, id, seq);
CREATE TABLE log (
	lsn        bigint PRIMARY KEY,
	container  text NOT NULL,
	id         text NOT NULL,
	pk         text NOT NULL,
	op         text NOT NULL,
	version    text NOT NULL,
	base       text NOT NULL,
	origin     text NOT NULL,
	ts         bigint NOT NULL,
	crts       bigint NOT NULL,
	policy     text NOT NULL,
	resolver   text NOT NULL DEFAULT '',
	resolves   text NOT NULL DEFAULT '',
	clamped_ts bigint NOT NULL DEFAULT 0
);
CREATE INDEX log_by_container ON log (container, lsn);
CREATE INDEX log_by_version ON log (version);
CREATE TABLE items (
	container text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	pk        text COLLATE "C" NOT NULL,
	version   text NOT NULL,
	lsn       bigint NOT NULL,
	deleted   boolean NOT NULL,
	PRIMARY KEY (container, id)
);
CREATE INDEX items_by_pk ON items (container, pk, id);
CREATE TABLE conflicts (
	cid        bigint PRIMARY KEY,
	cseq       bigint NOT NULL,
	container  text NOT NULL,
	doc_id     text NOT NULL,
	pk         text NOT NULL,
	kind       text NOT NULL,
	status     text NOT NULL,
	policy     text NOT NULL,
	loser      text NOT NULL,
	incoming   text NOT NULL,
	existing   text NOT NULL,
	base       text NOT NULL,
	winner_lsn bigint NOT NULL,
	reason     text NOT NULL,
	created_at bigint NOT NULL,
	resolver   text NOT NULL DEFAULT ''
);
CREATE INDEX conflicts_by_container ON conflicts (container, cid);
CREATE INDEX conflicts_by_status ON conflicts (status, container);
CREATE INDEX conflicts_by_cseq ON conflicts (cseq);
CREATE TABLE edges (
	name              text COLLATE "C" PRIMARY KEY,
	token_hash        text NOT NULL UNIQUE,
	scope             text NOT NULL,
	created_at        bigint NOT NULL,
	node_id           text NOT NULL DEFAULT '',
	last_seen         bigint NOT NULL DEFAULT 0,
	acked_lsn         bigint NOT NULL DEFAULT 0,
	pending           bigint NOT NULL DEFAULT 0,
	clock_skew_ms     bigint NOT NULL DEFAULT 0,
	clock_measured_at bigint NOT NULL DEFAULT 0,
	clamped           bigint NOT NULL DEFAULT 0
);
CREATE INDEX edges_by_node ON edges (node_id);
CREATE TABLE resolvers (
	name        text COLLATE "C" NOT NULL,
	version     int NOT NULL,
	sha256      text NOT NULL,
	size        int NOT NULL,
	uploaded_at bigint NOT NULL,
	wasm        bytea NOT NULL,
	calls       bigint NOT NULL DEFAULT 0,
	failures    text NOT NULL DEFAULT '{}',
	PRIMARY KEY (name, version)
);
CREATE TABLE sessions (
	id_hash    text COLLATE "C" PRIMARY KEY,
	binding    text NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
`, `
CREATE SEQUENCE hub_order;
CREATE TABLE hubs (
	name      text COLLATE "C" PRIMARY KEY,
	ord       bigint NOT NULL DEFAULT nextval('hub_order'),
	address   text NOT NULL DEFAULT '',
	joined_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	heartbeat timestamptz NOT NULL,
	removed   boolean NOT NULL DEFAULT false
);
CREATE TABLE lease (
	id         int PRIMARY KEY CHECK (id = 1),
	holder     text NOT NULL,
	epoch      bigint NOT NULL,
	renewed_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
INSERT INTO lease (id, holder, epoch, renewed_at, expires_at) VALUES (1, '', 0, 'epoch', 'epoch');
CREATE TABLE takeovers (
	epoch    bigint PRIMARY KEY,
	holder   text NOT NULL,
	previous text NOT NULL,
	taken_at timestamptz NOT NULL,
	gap_ms   bigint NOT NULL
);
CREATE TABLE forwarded (
	seq        bigserial PRIMARY KEY,
	hub        text NOT NULL,
	kind       text NOT NULL,
	payload    bytea NOT NULL,
	result     bytea,
	queued_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
	decided_at timestamptz
);
CREATE INDEX forwarded_pending ON forwarded (seq) WHERE result IS NULL;
ALTER TABLE edges ADD COLUMN hub text NOT NULL DEFAULT '';
`, `
ALTER TABLE containers ADD COLUMN indexing text NOT NULL DEFAULT '';
`}
