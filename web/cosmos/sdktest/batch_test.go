package sdktest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/edgesync/edgesync/internal/proctest"
)

// newProducts creates the database shop and its container products,
// partitioned on /region.
func newProducts(ctx context.Context, t *testing.T, c *azcosmos.Client) (*azcosmos.DatabaseClient, *azcosmos.ContainerClient) {
	t.Helper()
	if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shop"}, nil); err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	db, err := c.NewDatabase("shop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{
		ID:                     "products",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/region"}},
	}, nil); err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	cont, err := db.NewContainer("products")
	if err != nil {
		t.Fatal(err)
	}
	return db, cont
}

// A patch with a condition applies when the condition holds for the item's
// current version, is 412 when it does not, and 400 when it is no FROM
// clause; on an edge and on a hub.
func TestAzcosmos_PatchCondition(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkg  string
	}{
		{name: "edgenode", pkg: proctest.Edgenode},
		{name: "cloudhub", pkg: proctest.Cloudhub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			n := startNode(t, tc.pkg)
			c := newClient(t, n.cosmosURL, n.key)
			defer c.Close()
			_, cont := newProducts(ctx, t, c)
			east := azcosmos.NewPartitionKeyString("east")
			if _, err := cont.CreateItem(ctx, east, marshal(t, product{ID: "lamp", Region: "east", Stock: 2}), nil); err != nil {
				t.Fatalf("CreateItem: %v", err)
			}
			for _, step := range []struct {
				cond  string
				want  int
				stock int64
			}{
				{cond: "FROM c WHERE c.stock > 1", want: http.StatusOK, stock: 1},
				{cond: "FROM c WHERE c.stock > 1", want: http.StatusPreconditionFailed, stock: 1},
				{cond: "from products p where p.stock = 1 AND p.region = 'east'", want: http.StatusOK, stock: 0},
				{cond: "SELECT * FROM c", want: http.StatusBadRequest, stock: 0},
				{cond: "FROM c WHERE c.stock >", want: http.StatusBadRequest, stock: 0},
			} {
				var ops azcosmos.PatchOperations
				ops.SetCondition(step.cond)
				ops.AppendIncrement("/stock", -1)
				_, err := cont.PatchItem(ctx, east, "lamp", ops, nil)
				if got := status(err); got != step.want && !(step.want == http.StatusOK && err == nil) {
					t.Fatalf("PatchItem with condition %q: %v, want %d", step.cond, err, step.want)
				}
				read, err := cont.ReadItem(ctx, east, "lamp", nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := decodeItem(t, read.Value).Stock; got != step.stock {
					t.Fatalf("after the patch with condition %q: stock %d, want %d", step.cond, got, step.stock)
				}
			}
		})
	}
}

// A transactional batch on an edge applies all of its operations in one
// local transaction, or none: a failing operation has its status and every
// other 424, and the response is 207.
func TestAzcosmos_TransactionalBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, proctest.Edgenode)
	c := newClient(t, n.cosmosURL, n.key)
	defer c.Close()
	_, cont := newProducts(ctx, t, c)
	east := azcosmos.NewPartitionKeyString("east")
	if _, err := cont.CreateItem(ctx, east, marshal(t, product{ID: "lamp", Region: "east", Stock: 2}), nil); err != nil {
		t.Fatalf("CreateItem: %v", err)
	}

	b := cont.NewTransactionalBatch(east)
	b.CreateItem(marshal(t, product{ID: "desk", Region: "east", Price: 150}), nil)
	var inc azcosmos.PatchOperations
	inc.AppendIncrement("/stock", 5)
	b.PatchItem("lamp", inc, nil)
	b.UpsertItem(marshal(t, product{ID: "chair", Region: "east", Price: 40}), nil)
	b.ReadItem("desk", nil)
	b.DeleteItem("chair", nil)
	res, err := cont.ExecuteTransactionalBatch(ctx, b, &azcosmos.TransactionalBatchOptions{EnableContentResponseOnWrite: true})
	if err != nil {
		t.Fatalf("ExecuteTransactionalBatch: %v", err)
	}
	if !res.Success || len(res.OperationResults) != 5 {
		t.Fatalf("batch: success %v, %d results; want success and 5", res.Success, len(res.OperationResults))
	}
	for i, want := range []int32{201, 200, 201, 200, 204} {
		if got := res.OperationResults[i].StatusCode; got != want {
			t.Fatalf("operation %d: status %d, want %d", i, got, want)
		}
	}
	if got := decodeItem(t, res.OperationResults[3].ResourceBody); got.ID != "desk" || got.Price != 150 {
		t.Fatalf("read in the batch: %+v, want the desk the batch created", got)
	}
	if got := decodeItem(t, res.OperationResults[1].ResourceBody).Stock; got != 7 {
		t.Fatalf("patched stock %d, want 7", got)
	}

	// The third operation fails (the desk exists): nothing is applied.
	b = cont.NewTransactionalBatch(east)
	b.CreateItem(marshal(t, product{ID: "shelf", Region: "east"}), nil)
	b.DeleteItem("lamp", nil)
	b.CreateItem(marshal(t, product{ID: "desk", Region: "east"}), nil)
	res, err = cont.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil {
		t.Fatalf("ExecuteTransactionalBatch: %v", err)
	}
	if res.Success || res.RawResponse.StatusCode != http.StatusMultiStatus {
		t.Fatalf("failing batch: success %v status %d, want 207", res.Success, res.RawResponse.StatusCode)
	}
	for i, want := range []int32{424, 424, 409} {
		if got := res.OperationResults[i].StatusCode; got != want {
			t.Fatalf("failing batch, operation %d: status %d, want %d", i, got, want)
		}
	}
	if _, err := cont.ReadItem(ctx, east, "shelf", nil); status(err) != http.StatusNotFound {
		t.Fatalf("shelf after the failed batch: %v, want 404", err)
	}
	if _, err := cont.ReadItem(ctx, east, "lamp", nil); err != nil {
		t.Fatalf("lamp after the failed batch: %v, want it kept", err)
	}

	// A document of another partition key value fails the batch.
	b = cont.NewTransactionalBatch(east)
	b.CreateItem(marshal(t, product{ID: "west-lamp", Region: "west"}), nil)
	res, err = cont.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil || res.Success || res.OperationResults[0].StatusCode != http.StatusBadRequest {
		t.Fatalf("batch with another partition key value: %v, %+v; want operation 0 400", err, res.OperationResults)
	}
}

// Deleting a container deletes its items and keeps the container;
// deleting the database does so for each of its containers.
func TestAzcosmos_DeleteContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, proctest.Edgenode)
	c := newClient(t, n.cosmosURL, n.key)
	defer c.Close()
	db, cont := newProducts(ctx, t, c)
	for _, id := range []string{"a", "b", "c"} {
		pk := azcosmos.NewPartitionKeyString("r" + id)
		if _, err := cont.CreateItem(ctx, pk, marshal(t, product{ID: id, Region: "r" + id}), nil); err != nil {
			t.Fatalf("CreateItem: %v", err)
		}
	}
	if _, err := cont.Delete(ctx, nil); err != nil {
		t.Fatalf("ContainerClient.Delete: %v", err)
	}
	count := func() int {
		pager := cont.NewQueryItemsPager("SELECT c.id FROM c", azcosmos.NewPartitionKey(), nil)
		n := 0
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("query: %v", err)
			}
			n += len(page.Items)
		}
		return n
	}
	if got := count(); got != 0 {
		t.Fatalf("%d items after the container was deleted, want 0", got)
	}
	if _, err := cont.Read(ctx, nil); err != nil {
		t.Fatalf("container Read after its delete: %v, want it kept", err)
	}
	pk := azcosmos.NewPartitionKeyString("ra")
	if _, err := cont.CreateItem(ctx, pk, marshal(t, product{ID: "a", Region: "ra"}), nil); err != nil {
		t.Fatalf("CreateItem after the container was deleted: %v", err)
	}
	if _, err := db.Delete(ctx, nil); err != nil {
		t.Fatalf("DatabaseClient.Delete: %v", err)
	}
	if got := count(); got != 0 {
		t.Fatalf("%d items after the database was deleted, want 0", got)
	}
}
