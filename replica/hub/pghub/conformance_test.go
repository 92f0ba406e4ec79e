package pghub_test

import (
	"testing"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/hub/storetest"
)

func TestStore_Conformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) hub.Store {
		return pghub.New(pghub.Config{URL: pgtest.Database(t)})
	})
}

func TestStore_Reopen(t *testing.T) {
	url := pgtest.Database(t)
	storetest.RunReopen(t, func() hub.Store { return pghub.New(pghub.Config{URL: url}) })
}
