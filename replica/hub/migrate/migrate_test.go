package migrate_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/migrate"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
)

// served is a hub with a wasm host, served on loopback.
type served struct {
	h      *hub.Hub
	srv    *httptest.Server
	cancel context.CancelFunc
	closed bool
	close  func()
}

func serveHub(t *testing.T, st hub.Store, cacheDir string, log *slog.Logger) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: cacheDir, Limits: wasmhost.Limits{CompileTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	reg := wasmhost.NewRegistry(wh)
	h := hub.New(hub.Config{Store: st, Resolvers: reg, Logger: log})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeSync(ctx, w, r) }))
	s := &served{h: h, srv: srv, cancel: cancel}
	s.close = func() {
		if s.closed {
			return
		}
		s.closed = true
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("close hub: %v", err)
		}
		reg.Close(context.Background())
		wh.Close(context.Background())
	}
	t.Cleanup(s.close)
	return s
}

type testEdge struct {
	t   *testing.T
	r   *edge.Replica
	s   *edge.Syncer
	tok string
}

func newEdge(t *testing.T, h *hub.Hub, name string, scope []wire.ScopeEntry) *testEdge {
	t.Helper()
	tok, err := h.RegisterEdge(context.Background(), name, scope)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEdge{t: t, tok: tok, r: edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})}
	if err := e.r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.disconnect(); e.r.Close(context.Background()) })
	return e
}

func (e *testEdge) connect(url string) {
	s, err := edge.NewSyncer(e.r, edge.SyncConfig{Hubs: []string{url}, Token: e.tok, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
	s.Open(context.Background())
}

func (e *testEdge) disconnect() {
	if e.s != nil {
		e.s.Close(context.Background())
		e.s = nil
	}
}

func (e *testEdge) synced(h *hub.Hub) error {
	if n := e.r.Pending(); n != 0 {
		return fmt.Errorf("%d writes pending", n)
	}
	if got, want := e.r.ResumeLSN(), h.Head(); got != want {
		return fmt.Errorf("applied up to %d, hub at %d", got, want)
	}
	return nil
}

func (e *testEdge) write(container, id, body string) {
	e.t.Helper()
	if _, _, err := e.r.Upsert(context.Background(), container, id, []byte(body), edge.WriteOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// state is everything a hub answers about its data.
type state struct {
	HubID        string
	Head, CHead  int64
	Containers   []replica.Container
	Changes      map[string][]replica.Change
	Docs         map[string][]replica.Item
	Conflicts    map[string][]hub.Conflict
	Versions     map[string][]hub.ItemVersion
	Edges        []hub.Edge
	Resolvers    []hub.ResolverVersion
	Unresolved   int64
	ChangesAfter int64
}

func readState(t *testing.T, h *hub.Hub) state {
	t.Helper()
	ctx := context.Background()
	s := state{HubID: h.HubID(), Head: h.Head(), CHead: h.ConflictHead(), Containers: h.Containers(),
		Changes: map[string][]replica.Change{}, Docs: map[string][]replica.Item{}, Conflicts: map[string][]hub.Conflict{},
		Versions: map[string][]hub.ItemVersion{}, Resolvers: h.Resolvers()}
	for _, c := range s.Containers {
		ch, _, err := h.Changes(ctx, c.Name, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		s.Changes[c.Name] = ch
		page, err := h.List(ctx, c.Name, hub.ListOptions{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		s.Docs[c.Name] = page.Items
		cf, _, err := h.Conflicts(ctx, c.Name, "", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		s.Conflicts[c.Name] = cf
		for _, it := range page.Items {
			v, err := h.ItemVersions(ctx, c.Name, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			s.Versions[c.Name+"/"+it.ID] = v
		}
	}
	edges, err := h.Edges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range edges {
		edges[i].Online, edges[i].Lag = false, 0 // live values
	}
	s.Edges = edges
	if s.Unresolved, err = h.UnresolvedConflicts(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// connected records the resume points of the edges that connect.
type connected struct {
	slog.Handler
	mu      *sync.Mutex
	resumes *[]int64
}

func (c connected) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "edge connected" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "resume" {
				c.mu.Lock()
				*c.resumes = append(*c.resumes, a.Value.Int64())
				c.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (c connected) Enabled(context.Context, slog.Level) bool { return true }
func (c connected) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c connected) WithGroup(string) slog.Handler            { return c }

func readWasm(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../../testdata/resolvers/" + name)
	if err != nil {
		t.Fatalf("%v (rebuild with resolvers/build.sh)", err)
	}
	return b
}

// populate builds a hub's history through its API and two syncing edges:
// containers under three policies (one deciding with a wasm resolver),
// documents written at the hub and at the edges, conflicts resolved by
// each policy and one settled at the hub, a scoped edge.
func populate(t *testing.T, s *served) (a, b *testEdge) {
	t.Helper()
	ctx := context.Background()
	h := s.h
	if _, _, err := h.PutResolver(ctx, "counter", readWasm(t, "counter-c.wasm")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []replica.Container{
		{Name: "notes", PartitionKey: "/team", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeManual}},
		{Name: "meters", PartitionKey: "/site", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: "counter"}},
		{Name: "docs", PartitionKey: "/pk"},
	} {
		if _, _, err := h.PutContainer(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct{ c, body string }{
		{"notes", `{"id":"n1","team":"red","v":0}`}, {"notes", `{"id":"n2","team":"blue","v":0}`},
		{"meters", `{"id":"m1","site":"s1","count":10}`},
	} {
		if _, err := h.Create(ctx, d.c, []byte(d.body)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if _, err := h.Create(ctx, "docs", []byte(fmt.Sprintf(`{"id":"d%02d","pk":"p%d","n":%d}`, i, i%3, i))); err != nil {
			t.Fatal(err)
		}
	}
	a = newEdge(t, h, "a", nil)
	b = newEdge(t, h, "b", []wire.ScopeEntry{{Container: "notes", PartitionKeys: []string{"red"}}, {Container: "meters"}})
	a.connect(s.srv.URL)
	b.connect(s.srv.URL)
	eventually(t, func() error { return errors.Join(a.synced(h), b.synced(h)) })
	// Concurrent offline writes: conflicts under each policy.
	a.disconnect()
	b.disconnect()
	a.write("notes", "n1", `{"id":"n1","team":"red","v":1}`)
	b.write("notes", "n1", `{"id":"n1","team":"red","v":2}`)
	a.write("meters", "m1", `{"id":"m1","site":"s1","count":13}`)
	b.write("meters", "m1", `{"id":"m1","site":"s1","count":15}`)
	a.write("docs", "d01", `{"id":"d01","pk":"p1","n":100}`)
	if _, _, err := h.Upsert(ctx, "docs", "d01", []byte(`{"id":"d01","pk":"p1","n":200}`), hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	a.write("docs", "new", `{"id":"new","pk":"p0","n":1}`)
	a.connect(s.srv.URL)
	eventually(t, func() error { return a.synced(h) })
	b.connect(s.srv.URL)
	eventually(t, func() error { return errors.Join(a.synced(h), b.synced(h)) })
	un, _, err := h.Conflicts(ctx, "notes", replica.StatusUnresolved, 0, 10)
	if err != nil || len(un) != 1 {
		t.Fatalf("unresolved notes conflicts %+v, %v; want 1", un, err)
	}
	if _, err := h.ResolveConflict(ctx, "notes", un[0].ID, hub.Resolution{Keep: "incoming"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error { return errors.Join(a.synced(h), b.synced(h)) })
	return a, b
}

// TestRun_MovesHub: a SQLite hub with history, conflicts, a resolver and
// two edges is moved to PostgreSQL; a hub started there answers every
// read as the SQLite hub did, its edges reconnect with their tokens and
// resume from their own LSN (not from the start), and writes made offline
// meanwhile are confirmed after the moved log.
func TestRun_MovesHub(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	dir := t.TempDir()
	s1 := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	a, b := populate(t, s1)
	a.disconnect()
	b.disconnect()
	eventually(t, func() error {
		if n := s1.h.EdgesOnline(); n != 0 {
			return fmt.Errorf("%d edges online", n)
		}
		return nil
	})
	want := readState(t, s1.h)
	if want.Head < 25 || want.CHead < 2 || len(want.Resolvers) != 1 || len(want.Edges) != 2 {
		t.Fatalf("populated hub: head %d, conflict head %d, %d resolvers, %d edges; want a history to move",
			want.Head, want.CHead, len(want.Resolvers), len(want.Edges))
	}
	s1.close()
	// Written while the hub moves.
	a.write("docs", "offline", `{"id":"offline","pk":"p2","n":7}`)

	var progress bytes.Buffer
	rep, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url, Progress: &progress})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	if rep.HubID != want.HubID || rep.Heads.LSN != want.Head || rep.Heads.Cseq != want.CHead || len(rep.Tables) == 0 {
		t.Fatalf("report: hub %s heads %+v, want hub %s lsn %d cseq %d", rep.HubID, rep.Heads, want.HubID, want.Head, want.CHead)
	}
	for _, tr := range rep.Tables {
		if !tr.OK() || tr.SQLiteSHA256 == "" {
			t.Errorf("table %s: %+v", tr.Name, tr)
		}
	}
	for _, w := range []string{"copy versions: ", "verify log: "} {
		if !strings.Contains(progress.String(), w) {
			t.Errorf("progress has no %q:\n%s", w, progress.String())
		}
	}

	var mu sync.Mutex
	var resumes []int64
	log := slog.New(connected{mu: &mu, resumes: &resumes})
	s2 := serveHub(t, pghub.New(pghub.Config{URL: url}), t.TempDir(), log)
	got := readState(t, s2.h)
	if !reflect.DeepEqual(got, want) {
		for _, f := range []string{"HubID", "Head", "CHead", "Containers", "Changes", "Docs", "Conflicts", "Versions", "Edges", "Resolvers", "Unresolved"} {
			g, w := reflect.ValueOf(got).FieldByName(f).Interface(), reflect.ValueOf(want).FieldByName(f).Interface()
			if !reflect.DeepEqual(g, w) {
				t.Errorf("%s on PostgreSQL:\n%+v\nwant (SQLite):\n%+v", f, g, w)
			}
		}
		t.FailNow()
	}

	a.connect(s2.srv.URL)
	b.connect(s2.srv.URL)
	eventually(t, func() error { return errors.Join(a.synced(s2.h), b.synced(s2.h)) })
	mu.Lock()
	gotResumes := append([]int64(nil), resumes...)
	mu.Unlock()
	if len(gotResumes) != 2 || gotResumes[0] != want.Head || gotResumes[1] != want.Head {
		t.Fatalf("edges connected with resume points %v, want both at %d (no resync from 0)", gotResumes, want.Head)
	}
	it, err := s2.h.Get(ctx, "docs", "offline")
	if err != nil || it.LSN != want.Head+1 {
		t.Fatalf("offline write at the new hub: %+v, %v; want LSN %d", it, err, want.Head+1)
	}
	// The moved hub goes on deciding conflicts with the moved resolver.
	a.disconnect()
	b.disconnect()
	a.write("meters", "m1", `{"id":"m1","site":"s1","count":20}`)
	b.write("meters", "m1", `{"id":"m1","site":"s1","count":19}`)
	a.connect(s2.srv.URL)
	eventually(t, func() error { return a.synced(s2.h) })
	b.connect(s2.srv.URL)
	eventually(t, func() error { return errors.Join(a.synced(s2.h), b.synced(s2.h)) })
	m1, err := s2.h.Get(ctx, "meters", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m1.Body, []byte(`"count":`)) || s2.h.ConflictHead() <= want.CHead {
		t.Fatalf("m1 %s, conflict head %d (was %d): want a new conflict decided by the counter resolver", m1.Body, s2.h.ConflictHead(), want.CHead)
	}
	// New versions are stored after the moved ones: the history lists
	// them first, then the new ones.
	hist, err := s2.h.ItemVersions(ctx, "meters", "m1")
	if err != nil {
		t.Fatal(err)
	}
	var history, moved []string
	for _, v := range hist {
		history = append(history, fmt.Sprintf("%s@%d", v.Version, v.LSN))
	}
	for _, v := range want.Versions["meters/m1"] {
		moved = append(moved, fmt.Sprintf("%s@%d", v.Version, v.LSN))
	}
	if len(history) <= len(moved) || !reflect.DeepEqual(history[:len(moved)], moved) {
		t.Fatalf("m1 history on PostgreSQL: %v; want the moved versions %v, then the new ones", history, moved)
	}
}

// TestRun_RefusesNonEmptyTarget: a database a hub has used is refused,
// naming what it holds, and is left as it was.
func TestRun_RefusesNonEmptyTarget(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	dir := t.TempDir()
	s1 := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	if _, _, err := s1.h.PutContainer(ctx, replica.Container{Name: "docs", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	s1.close()
	// A hub ran on the target and wrote a document.
	s2 := serveHub(t, pghub.New(pghub.Config{URL: url}), t.TempDir(), nil)
	if _, _, err := s2.h.PutContainer(ctx, replica.Container{Name: "other", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.h.Create(ctx, "other", []byte(`{"id":"x","pk":"p"}`)); err != nil {
		t.Fatal(err)
	}
	targetID := s2.h.HubID()
	s2.close()
	_, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url})
	if !errors.Is(err, migrate.ErrTargetNotEmpty) {
		t.Fatalf("Run on a used database: %v, want ErrTargetNotEmpty", err)
	}
	for _, w := range []string{"meta has 1 rows", "containers has 1 rows", "log has 1 rows", "heads at lsn 1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	s3 := serveHub(t, pghub.New(pghub.Config{URL: url}), t.TempDir(), nil)
	if s3.h.HubID() != targetID || s3.h.Head() != 1 {
		t.Fatalf("target after the refusal: hub %s head %d, want %s at 1", s3.h.HubID(), s3.h.Head(), targetID)
	}
}

// TestRun_RefusesOpenSource: a hub that has its database open (running)
// is refused; once it is closed, the same migration goes through, and a
// hub started while it runs cannot open the database.
func TestRun_RefusesOpenSource(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	dir := t.TempDir()
	s1 := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	if _, _, err := s1.h.PutContainer(ctx, replica.Container{Name: "docs", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url}); !errors.Is(err, migrate.ErrSourceInUse) {
		t.Fatalf("Run beside a running hub: %v, want ErrSourceInUse", err)
	}
	s1.close()
	// While the copy runs, a hub cannot open the database.
	var opened error
	defer migrate.SetBeforeVerify(func(ctx context.Context, tx pgx.Tx) error {
		st := sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"})
		if opened = st.Open(ctx, nil); opened == nil {
			st.Close(ctx)
		}
		return nil
	})()
	if _, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url}); err != nil {
		t.Fatalf("Run after the hub stopped: %v", err)
	}
	if opened == nil || !strings.Contains(opened.Error(), "database is locked") {
		t.Fatalf("a hub opening the database during the copy: %v, want it locked", opened)
	}
	if _, err := migrate.Run(ctx, migrate.Config{Dir: t.TempDir(), URL: url}); !errors.Is(err, migrate.ErrNoSource) {
		t.Fatalf("Run on a directory without a hub: %v, want ErrNoSource", err)
	}
}

// TestRun_RefusesOtherSchema: a hub database of another schema version
// than the binary's is refused, and left as it was.
func TestRun_RefusesOtherSchema(t *testing.T) {
	url := pgtest.Database(t)
	dir := t.TempDir()
	serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil).close()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitehub.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	older := len(hub.SQLiteMigrations()) - 1
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", older)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = migrate.Run(context.Background(), migrate.Config{Dir: dir, URL: url})
	if !errors.Is(err, migrate.ErrSourceSchema) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", older)) {
		t.Fatalf("Run on a database at version %d: %v, want ErrSourceSchema naming the version", older, err)
	}
}

// TestRun_VerificationCatchesCorruptRow: a row changed in the target
// between the copy and the verification fails the migration, names the
// table, and nothing is committed.
func TestRun_VerificationCatchesCorruptRow(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	dir := t.TempDir()
	s1 := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	if _, _, err := s1.h.PutContainer(ctx, replica.Container{Name: "docs", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := s1.h.Create(ctx, "docs", []byte(fmt.Sprintf(`{"id":"d%d","pk":"p"}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	s1.close()
	tests := []struct {
		name, table, sql string
	}{
		{"document body", "versions", `UPDATE versions SET body = convert_to('{"id":"d3","pk":"q"}', 'UTF8') WHERE id = 'd3'`},
		{"deleted flag", "items", `UPDATE items SET deleted = true WHERE id = 'd1'`},
		{"row missing", "log", `DELETE FROM log WHERE lsn = 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer migrate.SetBeforeVerify(func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tt.sql)
				return err
			})()
			rep, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url})
			if !errors.Is(err, migrate.ErrMismatch) || !strings.Contains(err.Error(), "table "+tt.table+":") {
				t.Fatalf("Run with %s changed: %v, want ErrMismatch naming %s", tt.table, err, tt.table)
			}
			var bad []string
			for _, tr := range rep.Tables {
				if !tr.OK() {
					bad = append(bad, tr.Name)
				}
			}
			if !reflect.DeepEqual(bad, []string{tt.table}) {
				t.Fatalf("tables reported different: %v, want [%s]", bad, tt.table)
			}
		})
	}
	// Nothing was committed: the target is still empty and takes the hub.
	rep, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url})
	if err != nil || rep.Heads.LSN != 5 {
		t.Fatalf("Run after the failed ones: %+v, %v", rep, err)
	}
}

// TestRun_CanceledLeavesTargetEmpty: a migration interrupted after the
// copy (Ctrl-C) returns the cancellation and commits nothing: the next
// one finds the target empty and goes through.
func TestRun_CanceledLeavesTargetEmpty(t *testing.T) {
	url := pgtest.Database(t)
	dir := t.TempDir()
	s1 := serveHub(t, sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), dir+"/cache", nil)
	if _, _, err := s1.h.PutContainer(context.Background(), replica.Container{Name: "docs", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.h.Create(context.Background(), "docs", []byte(`{"id":"d","pk":"p"}`)); err != nil {
		t.Fatal(err)
	}
	s1.close()
	ctx, cancel := context.WithCancel(context.Background())
	restore := migrate.SetBeforeVerify(func(context.Context, pgx.Tx) error { cancel(); return nil })
	_, err := migrate.Run(ctx, migrate.Config{Dir: dir, URL: url})
	restore()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run canceled after the copy: %v, want context.Canceled", err)
	}
	rep, err := migrate.Run(context.Background(), migrate.Config{Dir: dir, URL: url})
	if err != nil || rep.Heads.LSN != 1 {
		t.Fatalf("Run after the canceled one: %+v, %v; want the hub moved up to LSN 1", rep, err)
	}
}
