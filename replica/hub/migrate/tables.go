package migrate

import "strings"

// kind is how a column's values are read, copied and hashed.
type kind int

const (
	kindInt  kind = iota // INTEGER / bigint, int
	kindText             // TEXT / text
	kindBlob             // BLOB / bytea, possibly NULL
	kindBool             // INTEGER 0 or 1 / boolean
)

type column struct {
	name string
	kind kind
	// src is the SQLite expression read for the column; default name.
	src string
}

// table is one table copied from the SQLite hub to PostgreSQL: the same
// name and columns on both sides, read on both in the order of order (a
// unique key; text keys compare by their bytes on both sides).
type table struct {
	name   string
	cols   []column
	order  []string // PostgreSQL column names of the key
	sorder []string // the same key in SQLite, when it differs (rowid)
}

func (t table) colNames() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

// sqliteQuery reads the table from SQLite in key order.
func (t table) sqliteQuery() string {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = c.name
		if c.src != "" {
			exprs[i] = c.src
		}
	}
	order := t.order
	if t.sorder != nil {
		order = t.sorder
	}
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + t.name + " ORDER BY " + strings.Join(order, ", ")
}

// postgresQuery reads the table back from PostgreSQL in the same order.
func (t table) postgresQuery() string {
	order := make([]string, len(t.order))
	for i, k := range t.order {
		order[i] = k
		if t.textKey(k) {
			order[i] += ` COLLATE "C"`
		}
	}
	return "SELECT " + strings.Join(t.colNames(), ", ") + " FROM " + t.name + " ORDER BY " + strings.Join(order, ", ")
}

func (t table) textKey(name string) bool {
	for _, c := range t.cols {
		if c.name == name {
			return c.kind == kindText
		}
	}
	return false
}

func ints(names ...string) []column  { return cols(kindInt, names) }
func texts(names ...string) []column { return cols(kindText, names) }

func cols(k kind, names []string) []column {
	out := make([]column, len(names))
	for i, n := range names {
		out[i] = column{name: n, kind: k}
	}
	return out
}

func join(parts ...[]column) []column {
	var out []column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tables are what a hub keeps, in the order they are copied. Dashboard
// sessions are left behind (they are short-lived: the operator logs in
// again), and so is whatever the PostgreSQL schema has that a SQLite hub
// does not (tables of the hub tier: they start empty).
var tables = []table{
	{name: "meta", cols: texts("key", "value"), order: []string{"key"}},
	{name: "containers", cols: join(texts("name", "pk_path", "policy", "indexing"), ints("updated_at")), order: []string{"name"}},
	// seq is the order the versions were stored in: SQLite's rowid.
	{name: "versions", cols: join(
		[]column{{name: "seq", kind: kindInt, src: "rowid"}},
		texts("version", "container", "id", "pk", "op", "base", "origin"), ints("ts"),
		[]column{{name: "body", kind: kindBlob}},
		texts("outcome"), ints("lsn"), texts("reason"), ints("conflict_id", "clamped_ts"),
	), order: []string{"seq"}, sorder: []string{"rowid"}},
	{name: "log", cols: join(
		ints("lsn"), texts("container", "id", "pk", "op", "version", "base", "origin"), ints("ts", "crts"),
		texts("policy", "resolver", "resolves"), ints("clamped_ts"),
	), order: []string{"lsn"}},
	{name: "items", cols: join(
		texts("container", "id", "pk", "version"), ints("lsn"), []column{{name: "deleted", kind: kindBool}},
	), order: []string{"container", "id"}},
	{name: "conflicts", cols: join(
		ints("cid", "cseq"), texts("container", "doc_id", "pk", "kind", "status", "policy", "loser", "incoming", "existing", "base"),
		ints("winner_lsn"), texts("reason"), ints("created_at"), texts("resolver"),
	), order: []string{"cid"}},
	{name: "edges", cols: join(
		texts("name", "token_hash", "scope"), ints("created_at"), texts("node_id"),
		ints("last_seen", "acked_lsn", "pending", "clock_skew_ms", "clock_measured_at", "clamped"),
	), order: []string{"name"}},
	{name: "push_order", cols: join(texts("node_id"), ints("held", "held_at")), order: []string{"node_id"}},
	{name: "resolvers", cols: join(
		texts("name"), ints("version"), texts("sha256"), ints("size", "uploaded_at"),
		[]column{{name: "wasm", kind: kindBlob}}, ints("calls"), texts("failures"),
	), order: []string{"name", "version"}},
}

// leftBehind are hub tables not copied; a target that holds rows in them
// is not empty all the same.
var leftBehind = []string{"sessions", "tier_secret"}
