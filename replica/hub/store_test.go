package hub_test

import (
	"os"
	"sync"
	"testing"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
)

// onPostgres says the hub's tests run on the PostgreSQL backend
// (EDGESYNC_TEST_HUB_STORE=postgres, with EDGESYNC_TEST_POSTGRES), not on
// SQLite: one set of tests, either backend.
var onPostgres = os.Getenv("EDGESYNC_TEST_HUB_STORE") == "postgres"

// databases are the test databases by data directory, so that a hub opened
// again on its directory finds its data.
var databases sync.Map

// newStore returns the store of a hub whose data directory is dir.
func newStore(t testing.TB, dir string) hub.Store {
	t.Helper()
	if !onPostgres {
		return sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"})
	}
	url, ok := databases.Load(dir)
	if !ok {
		url, _ = databases.LoadOrStore(dir, pgtest.Database(t))
	}
	return pghub.New(pghub.Config{URL: url.(string)})
}

// skipOnPostgres skips a test that reads the SQLite database itself.
func skipOnPostgres(t testing.TB) {
	t.Helper()
	if onPostgres {
		t.Skip("reads the SQLite database directly")
	}
}
