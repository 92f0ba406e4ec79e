package sqlitehub_test

import (
	"testing"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/hub/storetest"
)

func TestStore_Conformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) hub.Store {
		return sqlitehub.New(sqlitehub.Config{Dir: t.TempDir(), Durability: "normal"})
	})
}

func TestStore_Reopen(t *testing.T) {
	dir := t.TempDir()
	storetest.RunReopen(t, func() hub.Store { return sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}) })
}
