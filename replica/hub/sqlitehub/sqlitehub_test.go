package sqlitehub_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// A hub whose database holds a rejected version under one of the hub's own
// version ids (stored by hubs before rejected versions were dropped) writes
// again once opened: the upgrade deletes the rejected versions.
func TestOpen_DropsStoredRejectedVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlitestore.Open(ctx, filepath.Join(dir, sqlitehub.DBFile), sqlitestore.Options{Durability: "normal"}, hub.SQLiteMigrations()[:5])
	if err != nil {
		t.Fatal(err)
	}
	const hubID = "h0123456789abcdef"
	for _, q := range []string{
		`INSERT INTO meta (key, value) VALUES ('hub_id', '` + hubID + `')`,
		`INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
			VALUES ('` + hubID + `-1', 'missing', 'x', '', 'create', '', '` + hubID + `', 1, '{"id":"x"}', 'rejected', 0, 'container "missing" does not exist', 0)`,
	} {
		if _, err := db.Write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"})})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if h.HubID() != hubID {
		t.Fatalf("HubID()=%s, want %s", h.HubID(), hubID)
	}
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	it, err := h.Create(ctx, "c", []byte(`{"id":"a","pk":"p"}`))
	if err != nil {
		t.Fatalf("hub write after the upgrade: %v", err)
	}
	if it.Version != hubID+"-1" {
		t.Fatalf("version %s, want %s-1 (the id the rejected version held)", it.Version, hubID)
	}
}

// An edge's first hello asks whether another edge holds its node id; with
// many edges registered that read must use an index, not scan them all in
// the hub's single writer.
func TestOpen_EdgeOfNodeUsesIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"})})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sqlitestore.Open(ctx, filepath.Join(dir, sqlitehub.DBFile), sqlitestore.Options{Durability: "normal"}, hub.SQLiteMigrations())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Write.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT name FROM edges WHERE node_id = ? AND name != ?`, "e0123456789abcdef", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX edges_by_node") {
		t.Fatalf("plan of the node id lookup: %q, want a search using edges_by_node", got)
	}
}
