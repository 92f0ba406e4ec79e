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
//
// The fourth keeps indexes for queries (index.go): idx_paths lists each
// container's indexed paths (in policy order, with their property names;
// ready once the items written before the path was added are indexed);
// idx holds, for each live item and indexed path whose value is null, a
// boolean, a number or a string, the value's type rank t (1 null, 2
// boolean, 3 number, 4 string), n (the number, or 0/1 for null and
// booleans) and s (the string, in the C collation: code point order), one
// B-tree over (container, path, t, n, s, id). Statement triggers on items
// and versions (one call per multi-row INSERT, over its transition table)
// keep idx in step in the transaction that writes them, whichever of the
// two rows is written first. A document PostgreSQL's JSON parser
// refuses (a string holding \u0000) gets no entries, with a warning in the
// server's log.
//
// The fifth makes those triggers exist only while idx_paths lists a path
// (idx_triggers_follow_paths): PostgreSQL builds a statement's transition
// tables whatever the trigger then does: 3-4 ms of the server's time per
// push of 256 documents, on a hub that indexes nothing. Every transaction that
// changes idx_paths calls it last, under an advisory lock held until it
// ends, so that of two hubs changing definitions at once the second sees
// the first's paths. CREATE and DROP TRIGGER lock items and versions
// until the definition's transaction commits: a write in progress
// finishes first, and every write after it is kept by the triggers, or
// sees them gone.
//
// The sixth keeps each edge node's push order (the version held back and
// since when). The seventh names, in the queue of forwarded decisions,
// the edge node of a push and the lowest counter among its versions
// issued by that node (Tier.PushQueued; "" and 0 for other decisions, and
// for pushes queued by a hub without it).
// The eighth makes the forwarded queue an unlogged table (no WAL: its
// rows live for milliseconds, and a crash of the server, which empties
// it, loses nothing a hub acknowledged; see Tier.Forward), with its
// sequence kept logged so that seqs keep growing across a crash; and
// drops the log's index by version id,
// which only an item's history read (ItemVersions finds a version's log
// record by its LSN).
// The ninth keeps the tier's secret (tier_secret), which a hub presents
// to the sequencer's hub when it hands it a push (Tier.Secret): 32 random
// bytes in hex, drawn by the first hub of the tier to start (Tier.Open),
// not by the migration, so that a schema just made is empty (cloudhub
// migrate copies only into an empty one).
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
`, `
CREATE TABLE idx_paths (
	container text COLLATE "C" NOT NULL,
	ord       int NOT NULL,
	path      text NOT NULL,
	names     text[] NOT NULL,
	ready     boolean NOT NULL DEFAULT false,
	PRIMARY KEY (container, path)
);
CREATE TABLE idx (
	container text COLLATE "C" NOT NULL,
	path      text COLLATE "C" NOT NULL,
	t         smallint NOT NULL,
	n         double precision NOT NULL,
	s         text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	PRIMARY KEY (container, path, t, n, s, id)
);
CREATE INDEX idx_by_id ON idx (container, id);
CREATE FUNCTION idx_number(x jsonb) RETURNS double precision LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN x::text::double precision;
EXCEPTION WHEN others THEN
	RETURN NULL;
END $$;
CREATE FUNCTION idx_get(doc jsonb, names text[]) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	k text;
BEGIN
	FOREACH k IN ARRAY names LOOP
		IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
			RETURN NULL;
		END IF;
		doc := doc -> k;
	END LOOP;
	RETURN doc;
END $$;
CREATE FUNCTION idx_doc(body bytea, c text, i text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	RETURN convert_from(body, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
	RAISE WARNING 'edgesync: item % of container % is not indexed: %', i, c, SQLERRM;
	RETURN NULL;
END $$;
CREATE FUNCTION idx_key(v jsonb, OUT t smallint, OUT n double precision, OUT s text) LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE jsonb_typeof(v) WHEN 'null' THEN 1 WHEN 'boolean' THEN 2 WHEN 'number' THEN 3 WHEN 'string' THEN 4 END::smallint,
		CASE jsonb_typeof(v) WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 1 ELSE 0 END
			WHEN 'number' THEN idx_number(v) ELSE 0 END::double precision,
		CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' ELSE '' END
$$;
CREATE FUNCTION idx_put(c text, i text, body bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	doc jsonb;
BEGIN
	DELETE FROM idx WHERE container = c AND id = i;
	IF body IS NULL THEN
		RETURN;
	END IF;
	doc := idx_doc(body, c, i);
	INSERT INTO idx (container, path, t, n, s, id)
	SELECT c, p.path, k.t, k.n, k.s, i FROM idx_paths p, LATERAL idx_key(idx_get(doc, p.names)) k
	WHERE p.container = c AND k.t IS NOT NULL AND k.n IS NOT NULL
	ON CONFLICT DO NOTHING;
END $$;
CREATE FUNCTION idx_items_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM idx_paths p WHERE p.container IN (SELECT container FROM nt)) THEN
		RETURN NULL;
	END IF;
	DELETE FROM idx x USING nt WHERE x.container = nt.container AND x.id = nt.id;
	WITH d AS MATERIALIZED (
		SELECT nt.container, nt.id, idx_doc(v.body, nt.container, nt.id) AS doc FROM nt JOIN versions v ON v.version = nt.version
		WHERE NOT nt.deleted AND v.body IS NOT NULL AND EXISTS (SELECT 1 FROM idx_paths q WHERE q.container = nt.container))
	INSERT INTO idx (container, path, t, n, s, id)
	SELECT d.container, p.path, k.t, k.n, k.s, d.id FROM d JOIN idx_paths p ON p.container = d.container, LATERAL idx_key(idx_get(d.doc, p.names)) k
	WHERE k.t IS NOT NULL AND k.n IS NOT NULL
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE FUNCTION idx_items_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM idx x USING ot WHERE x.container = ot.container AND x.id = ot.id;
	RETURN NULL;
END $$;
CREATE FUNCTION idx_versions_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM idx_paths p WHERE p.container IN (SELECT container FROM nv)) THEN
		RETURN NULL;
	END IF;
	-- The versions stored as their item's current one (the item row was
	-- written first).
	DELETE FROM idx x USING nv JOIN items i ON i.container = nv.container AND i.id = nv.id AND i.version = nv.version AND NOT i.deleted
		WHERE x.container = nv.container AND x.id = nv.id AND nv.body IS NOT NULL;
	WITH d AS MATERIALIZED (
		SELECT nv.container, nv.id, idx_doc(nv.body, nv.container, nv.id) AS doc FROM nv
		JOIN items i ON i.container = nv.container AND i.id = nv.id AND i.version = nv.version AND NOT i.deleted
		WHERE nv.body IS NOT NULL AND EXISTS (SELECT 1 FROM idx_paths q WHERE q.container = nv.container))
	INSERT INTO idx (container, path, t, n, s, id)
	SELECT d.container, p.path, k.t, k.n, k.s, d.id FROM d JOIN idx_paths p ON p.container = d.container, LATERAL idx_key(idx_get(d.doc, p.names)) k
	WHERE k.t IS NOT NULL AND k.n IS NOT NULL
	ON CONFLICT DO NOTHING;
	RETURN NULL;
END $$;
CREATE TRIGGER idx_item_insert AFTER INSERT ON items REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION idx_items_written();
CREATE TRIGGER idx_item_update AFTER UPDATE ON items REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION idx_items_written();
CREATE TRIGGER idx_item_delete AFTER DELETE ON items REFERENCING OLD TABLE AS ot FOR EACH STATEMENT EXECUTE FUNCTION idx_items_deleted();
CREATE TRIGGER idx_version_insert AFTER INSERT ON versions REFERENCING NEW TABLE AS nv FOR EACH STATEMENT EXECUTE FUNCTION idx_versions_stored();
`, `
DROP TRIGGER idx_item_insert ON items;
DROP TRIGGER idx_item_update ON items;
DROP TRIGGER idx_item_delete ON items;
DROP TRIGGER idx_version_insert ON versions;
CREATE FUNCTION idx_triggers_follow_paths() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	want boolean;
	have boolean;
BEGIN
	-- One transaction at a time: each statement below reads what the
	-- ones before it committed.
	PERFORM pg_advisory_xact_lock(7264852);
	SELECT EXISTS (SELECT 1 FROM idx_paths) INTO want;
	SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'items'::regclass AND tgname = 'idx_item_insert') INTO have;
	IF want <> have THEN
		-- Writes in progress finish first (a DROP TRIGGER then waits for
		-- readers alone).
		LOCK TABLE items, versions IN SHARE ROW EXCLUSIVE MODE;
	END IF;
	IF want AND NOT have THEN
		CREATE TRIGGER idx_item_insert AFTER INSERT ON items REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION idx_items_written();
		CREATE TRIGGER idx_item_update AFTER UPDATE ON items REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION idx_items_written();
		CREATE TRIGGER idx_item_delete AFTER DELETE ON items REFERENCING OLD TABLE AS ot FOR EACH STATEMENT EXECUTE FUNCTION idx_items_deleted();
		CREATE TRIGGER idx_version_insert AFTER INSERT ON versions REFERENCING NEW TABLE AS nv FOR EACH STATEMENT EXECUTE FUNCTION idx_versions_stored();
	ELSIF have AND NOT want THEN
		DROP TRIGGER idx_item_insert ON items;
		DROP TRIGGER idx_item_update ON items;
		DROP TRIGGER idx_item_delete ON items;
		DROP TRIGGER idx_version_insert ON versions;
	END IF;
END $$;
SELECT idx_triggers_follow_paths();
`, `
CREATE TABLE push_order (
	node_id text COLLATE "C" PRIMARY KEY,
	held    bigint NOT NULL,
	held_at bigint NOT NULL
);
`, `
ALTER TABLE forwarded ADD COLUMN node_id text NOT NULL DEFAULT '', ADD COLUMN first_counter bigint NOT NULL DEFAULT 0;
`, `
ALTER TABLE forwarded SET UNLOGGED;
ALTER SEQUENCE forwarded_seq_seq SET LOGGED;
DROP INDEX log_by_version;
`, `
CREATE TABLE tier_secret (
	id     int PRIMARY KEY CHECK (id = 1),
	secret text NOT NULL
);
`}
