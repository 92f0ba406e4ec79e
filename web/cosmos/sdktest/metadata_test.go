package sdktest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/edgesync/edgesync/internal/proctest"
)

// TestAzcosmos_Metadata lists and changes databases and containers through
// azcosmos, and checks that what edgesync does not support is refused with
// 400 rather than half done.
func TestAzcosmos_Metadata(t *testing.T) {
	n := startNode(t, proctest.Edgenode)
	c := newClient(t, n.cosmosURL, n.key)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, id := range []string{"shop", "empty"} {
		if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: id}, nil); err != nil {
			t.Fatalf("CreateDatabase %s: %v", id, err)
		}
	}
	db, err := c.NewDatabase("shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []azcosmos.ContainerProperties{
		{ID: "products", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/region"}}},
		{ID: "carts", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/user"}},
			ConflictResolutionPolicy: &azcosmos.ConflictResolutionPolicy{Mode: azcosmos.ConflictResolutionModeCustom}},
	} {
		if _, err := db.CreateContainer(ctx, p, nil); err != nil {
			t.Fatalf("CreateContainer %s: %v", p.ID, err)
		}
	}

	dbs := c.NewQueryDatabasesPager("SELECT * FROM c", nil)
	var dbIDs []string
	for i := 0; dbs.More() && i < 10; i++ {
		page, err := dbs.NextPage(ctx)
		if err != nil {
			t.Fatalf("NewQueryDatabasesPager: %v", err)
		}
		for _, d := range page.Databases {
			dbIDs = append(dbIDs, d.ID)
		}
	}
	if len(dbIDs) != 2 {
		t.Fatalf("databases = %q, want empty and shop", dbIDs)
	}
	colls := db.NewQueryContainersPager("SELECT * FROM c", nil)
	var collIDs []string
	for i := 0; colls.More() && i < 10; i++ {
		page, err := colls.NextPage(ctx)
		if err != nil {
			t.Fatalf("NewQueryContainersPager: %v", err)
		}
		for _, p := range page.Containers {
			collIDs = append(collIDs, p.ID)
		}
	}
	if len(collIDs) != 2 {
		t.Fatalf("containers = %q, want carts and products", collIDs)
	}

	// Replace changes the conflict policy.
	cont, err := db.NewContainer("products")
	if err != nil {
		t.Fatal(err)
	}
	r, err := cont.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	props := *r.ContainerProperties
	props.ConflictResolutionPolicy = &azcosmos.ConflictResolutionPolicy{Mode: azcosmos.ConflictResolutionModeLastWriteWins, ResolutionPath: "/price"}
	if _, err := cont.Replace(ctx, props, nil); err != nil {
		t.Fatalf("container Replace: %v", err)
	}
	if r, err = cont.Read(ctx, nil); err != nil || r.ContainerProperties.ConflictResolutionPolicy.ResolutionPath != "/price" {
		t.Fatalf("after Replace: %+v, %v; want LastWriterWins on /price", r.ContainerProperties.ConflictResolutionPolicy, err)
	}

	// A database without containers can be deleted; what edgesync does not
	// do is refused.
	empty, err := c.NewDatabase("empty")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Delete(ctx, nil); err != nil {
		t.Fatalf("Delete of a database without containers: %v", err)
	}
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"read throughput", func() error { _, err := cont.ReadThroughput(ctx, nil); return err }},
		{"a numeric partition key", func() error {
			_, err := cont.CreateItem(ctx, azcosmos.NewPartitionKeyNumber(3), []byte(`{"id":"n","region":3}`), nil)
			return err
		}},
	} {
		if got := status(tt.call()); got != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tt.name, got)
		}
	}
}
