package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/edgesync/edgesync/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// node is a running edgenode or cloudhub serving the Cosmos DB API.
type node struct {
	cosmosURL string // the Cosmos DB API
	apiURL    string // the node's own API
	key       string // the Cosmos master key
	pid       int
}

var apiAddrRE = regexp.MustCompile(`(?:edgenode|cloudhub) listening[^\n]*\baddr=("?)([^\s"]+)`)

// startNode runs the command (proctest.Edgenode without a hub, or
// proctest.Cloudhub) with a generated Cosmos key, read back from its data
// directory as an operator would.
func startNode(t testing.TB, pkg string, extra ...string) node {
	t.Helper()
	bin := proctest.Build(t, pkg)[0]
	dir := t.TempDir()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--cosmos-listen", "127.0.0.1:0"}, extra...)
	p, err := proctest.Start(bin, args, "cosmos api listening", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Terminate(10 * time.Second); err != nil {
			p.Kill()
			t.Error(err)
		}
	})
	m := apiAddrRE.FindStringSubmatch(p.Log.String())
	if m == nil {
		t.Fatalf("no listening line for the node's own API in the log:\n%s", p.Log)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cosmos-key"))
	if err != nil {
		t.Fatal(err)
	}
	return node{cosmosURL: "http://" + p.Addr, apiURL: "http://" + m[2], key: strings.TrimSpace(string(b)), pid: p.Cmd.Process.Pid}
}

func newClient(t testing.TB, endpoint, key string) *azcosmos.Client {
	t.Helper()
	cred, err := azcosmos.NewKeyCredential(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azcosmos.NewClientWithKey(endpoint, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// status is the HTTP status of an SDK error, 0 when there is none.
func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

type product struct {
	ID     string   `json:"id"`
	Region string   `json:"region"`
	Name   string   `json:"name,omitempty"`
	Price  float64  `json:"price"`
	Stock  int64    `json:"stock"`
	Tags   []string `json:"tags,omitempty"`
	Note   string   `json:"note,omitempty"`
	ETag   string   `json:"_etag,omitempty"`
	TS     int64    `json:"_ts,omitempty"`
}

func decodeItem(t *testing.T, b []byte) product {
	t.Helper()
	var p product
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("item %s: %v", b, err)
	}
	return p
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAzcosmos_Core runs the core of an app through azcosmos against a real
// edgenode (no hub: the app works offline) and a real cloudhub.
func TestAzcosmos_Core(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkg  string
	}{
		{name: "edgenode", pkg: proctest.Edgenode},
		{name: "cloudhub", pkg: proctest.Cloudhub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, tc.pkg)
			c := newClient(t, n.cosmosURL, n.key)
			defer c.Close()
			runCore(t, c)
		})
	}
}

// runCore creates the database shop and its container products and runs
// every core operation on them.
func runCore(t *testing.T, c *azcosmos.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Databases and a container with a partition key and a conflict policy.
	if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shop"}, nil); err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	if _, err := c.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shop"}, nil); status(err) != http.StatusConflict {
		t.Fatalf("CreateDatabase again: %v, want 409", err)
	}
	db, err := c.NewDatabase("shop")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := db.Read(ctx, nil); err != nil || r.DatabaseProperties.ID != "shop" {
		t.Fatalf("database Read: %+v, %v", r.DatabaseProperties, err)
	}
	cresp, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{
		ID:                     "products",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/region"}},
		ConflictResolutionPolicy: &azcosmos.ConflictResolutionPolicy{
			Mode:           azcosmos.ConflictResolutionModeLastWriteWins,
			ResolutionPath: "/price",
		},
	}, nil)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if got := cresp.ContainerProperties.ConflictResolutionPolicy; got == nil || got.ResolutionPath != "/price" {
		t.Fatalf("created conflict policy %+v, want LastWriterWins on /price", got)
	}
	cont, err := db.NewContainer("products")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := cont.Read(ctx, nil); err != nil || r.ContainerProperties.PartitionKeyDefinition.Paths[0] != "/region" {
		t.Fatalf("container Read: %+v, %v", r.ContainerProperties, err)
	}
	east := azcosmos.NewPartitionKeyString("east")

	// Item CRUD.
	created, err := cont.CreateItem(ctx, east, marshal(t, product{ID: "lamp", Region: "east", Price: 21.99, Stock: 3}), nil)
	if err != nil {
		t.Fatalf("CreateItem: %v", err)
	}
	if created.RawResponse.StatusCode != http.StatusCreated || created.ETag == "" || len(created.Value) != 0 {
		t.Fatalf("CreateItem: status %d etag %q body %q, want 201, an etag and no body (return=minimal)",
			created.RawResponse.StatusCode, created.ETag, created.Value)
	}
	if _, err := cont.CreateItem(ctx, east, marshal(t, product{ID: "lamp", Region: "east"}), nil); status(err) != http.StatusConflict {
		t.Fatalf("CreateItem of an existing id: %v, want 409", err)
	}
	read, err := cont.ReadItem(ctx, east, "lamp", nil)
	if err != nil {
		t.Fatalf("ReadItem: %v", err)
	}
	if got := decodeItem(t, read.Value); got.Price != 21.99 || got.ETag != string(created.ETag) {
		t.Fatalf("ReadItem = %+v, want price 21.99 and etag %s", got, created.ETag)
	}
	if _, err := cont.ReadItem(ctx, east, "nothing", nil); status(err) != http.StatusNotFound {
		t.Fatalf("ReadItem of a missing id: %v, want 404", err)
	}
	if _, err := cont.ReadItem(ctx, azcosmos.NewPartitionKeyString("west"), "lamp", nil); status(err) != http.StatusNotFound {
		t.Fatalf("ReadItem in another partition: %v, want 404", err)
	}
	replaced, err := cont.ReplaceItem(ctx, east, "lamp", marshal(t, product{ID: "lamp", Region: "east", Price: 20.99, Stock: 3}),
		&azcosmos.ItemOptions{IfMatchEtag: &created.ETag})
	if err != nil {
		t.Fatalf("ReplaceItem if-match the current etag: %v", err)
	}
	if replaced.ETag == created.ETag {
		t.Fatalf("ReplaceItem kept the etag %s", replaced.ETag)
	}
	if _, err := cont.ReplaceItem(ctx, east, "lamp", marshal(t, product{ID: "lamp", Region: "east", Price: 1}),
		&azcosmos.ItemOptions{IfMatchEtag: &created.ETag}); status(err) != http.StatusPreconditionFailed {
		t.Fatalf("ReplaceItem if-match a stale etag: %v, want 412", err)
	}
	if _, err := cont.ReplaceItem(ctx, east, "nothing", marshal(t, product{ID: "nothing", Region: "east"}), nil); status(err) != http.StatusNotFound {
		t.Fatalf("ReplaceItem of a missing id: %v, want 404", err)
	}
	up, err := cont.UpsertItem(ctx, east, marshal(t, product{ID: "desk", Region: "east", Price: 150}), nil)
	if err != nil || up.RawResponse.StatusCode != http.StatusCreated {
		t.Fatalf("UpsertItem of a new id: %v, want 201", err)
	}
	up, err = cont.UpsertItem(ctx, east, marshal(t, product{ID: "desk", Region: "east", Price: 140}), nil)
	if err != nil || up.RawResponse.StatusCode != http.StatusOK {
		t.Fatalf("UpsertItem of an existing id: %v, want 200", err)
	}

	// Patch.
	var ops azcosmos.PatchOperations
	ops.AppendSet("/name", "Desk lamp")
	ops.AppendAdd("/tags", []string{"light"})
	ops.AppendReplace("/price", 19.99)
	ops.AppendIncrement("/stock", 2)
	patched, err := cont.PatchItem(ctx, east, "lamp", ops, &azcosmos.ItemOptions{EnableContentResponseOnWrite: true})
	if err != nil {
		t.Fatalf("PatchItem: %v", err)
	}
	if got := decodeItem(t, patched.Value); got.Name != "Desk lamp" || got.Price != 19.99 || got.Stock != 5 || len(got.Tags) != 1 {
		t.Fatalf("PatchItem = %+v, want name set, tags added, price replaced, stock 5", got)
	}
	var remove azcosmos.PatchOperations
	remove.AppendRemove("/name")
	if _, err := cont.PatchItem(ctx, east, "lamp", remove, &azcosmos.ItemOptions{IfMatchEtag: &created.ETag}); status(err) != http.StatusPreconditionFailed {
		t.Fatalf("PatchItem if-match a stale etag: %v, want 412", err)
	}
	if _, err := cont.PatchItem(ctx, east, "lamp", remove, &azcosmos.ItemOptions{IfMatchEtag: &patched.ETag}); err != nil {
		t.Fatalf("PatchItem remove: %v", err)
	}
	read, err = cont.ReadItem(ctx, east, "lamp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeItem(t, read.Value); got.Name != "" || got.Stock != 5 {
		t.Fatalf("after remove: %+v, want no name", got)
	}

	// Delete.
	if _, err := cont.DeleteItem(ctx, east, "desk", &azcosmos.ItemOptions{IfMatchEtag: &created.ETag}); status(err) != http.StatusPreconditionFailed {
		t.Fatalf("DeleteItem if-match a stale etag: %v, want 412", err)
	}
	del, err := cont.DeleteItem(ctx, east, "desk", nil)
	if err != nil || del.RawResponse.StatusCode != http.StatusNoContent {
		t.Fatalf("DeleteItem: %v, want 204", err)
	}
	if _, err := cont.DeleteItem(ctx, east, "desk", nil); status(err) != http.StatusNotFound {
		t.Fatalf("DeleteItem of a deleted id: %v, want 404", err)
	}

	// A query with parameters and ORDER BY, paged to the end.
	west := azcosmos.NewPartitionKeyString("west")
	for i, price := range []float64{5, 3, 9, 1, 7} {
		id := string(rune('a' + i))
		if _, err := cont.CreateItem(ctx, west, marshal(t, product{ID: id, Region: "west", Price: price}), nil); err != nil {
			t.Fatalf("CreateItem %s: %v", id, err)
		}
	}
	q := "SELECT c.id, c.price FROM c WHERE c.region = @region AND c.price > @min ORDER BY c.price DESC"
	pager := cont.NewQueryItemsPager(q, west, &azcosmos.QueryOptions{
		PageSizeHint:    2,
		QueryParameters: []azcosmos.QueryParameter{{Name: "@region", Value: "west"}, {Name: "@min", Value: 2}},
	})
	var ids []string
	pages := 0
	for pager.More() && pages < 10 {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("query page %d: %v", pages, err)
		}
		pages++
		if len(page.Items) > 2 {
			t.Fatalf("query page %d has %d items, want at most 2", pages, len(page.Items))
		}
		for _, b := range page.Items {
			ids = append(ids, decodeItem(t, b).ID)
		}
	}
	if got, want := strings.Join(ids, ","), "c,e,a,b"; got != want || pages != 2 {
		t.Fatalf("query ids = %s in %d pages, want %s in 2", got, pages, want)
	}

	// The change feed from the beginning, then from its continuation.
	ranges, err := cont.ReadFeedRanges(ctx, nil)
	if err != nil || len(ranges) != 1 {
		t.Fatalf("ReadFeedRanges = %+v, %v; want one range", ranges, err)
	}
	feed, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], MaxItemCount: 100})
	if err != nil {
		t.Fatalf("ReadChangeFeed: %v", err)
	}
	var changed []string
	for _, b := range feed.Items {
		changed = append(changed, decodeItem(t, b).ID)
	}
	if got, want := strings.Join(changed, ","), "lamp,a,b,c,d,e"; got != want {
		t.Fatalf("change feed ids = %s, want %s (deletes left out)", got, want)
	}
	if _, err := cont.UpsertItem(ctx, west, marshal(t, product{ID: "f", Region: "west", Price: 2}), nil); err != nil {
		t.Fatal(err)
	}
	next, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{Continuation: &feed.ContinuationToken})
	if err != nil {
		t.Fatalf("ReadChangeFeed from the continuation: %v", err)
	}
	if len(next.Items) != 1 || decodeItem(t, next.Items[0]).ID != "f" {
		t.Fatalf("change feed from the continuation: %d items %q, want f only", len(next.Items), next.Items)
	}

	// The change feed of one partition key value, and from a time.
	pkFeed, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], PartitionKey: &east})
	if err != nil {
		t.Fatalf("ReadChangeFeed of one partition key: %v", err)
	}
	if len(pkFeed.Items) != 1 || decodeItem(t, pkFeed.Items[0]).ID != "lamp" {
		t.Fatalf("change feed of partition east: %q, want lamp only", pkFeed.Items)
	}
	hourAgo, inAnHour := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if f, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], StartFrom: &hourAgo}); err != nil || len(f.Items) != 7 {
		t.Fatalf("change feed from an hour ago: %d items, %v; want 7", len(f.Items), err)
	}
	if f, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], StartFrom: &inAnHour}); err != nil || len(f.Items) != 0 {
		t.Fatalf("change feed from an hour ahead: %d items, %v; want none", len(f.Items), err)
	}
	empty, err := cont.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{Continuation: &next.ContinuationToken})
	if err != nil || len(empty.Items) != 0 || empty.RawResponse.StatusCode != http.StatusNotModified {
		t.Fatalf("change feed with nothing new: %d items, %v; want 304", len(empty.Items), err)
	}

	// A query across partition keys, ORDER BY, paged; and ReadManyItems.
	all := cont.NewQueryItemsPager("SELECT c.id FROM c ORDER BY c.id", azcosmos.NewPartitionKey(), &azcosmos.QueryOptions{PageSizeHint: 3})
	ids, pages = nil, 0
	for all.More() && pages < 10 {
		page, err := all.NextPage(ctx)
		if err != nil {
			t.Fatalf("cross-partition query page %d: %v", pages, err)
		}
		pages++
		for _, b := range page.Items {
			ids = append(ids, decodeItem(t, b).ID)
		}
	}
	if got, want := strings.Join(ids, ","), "a,b,c,d,e,f,lamp"; got != want || pages != 3 {
		t.Fatalf("cross-partition query ids = %s in %d pages, want %s in 3", got, pages, want)
	}
	many, err := cont.ReadManyItems(ctx, []azcosmos.ItemIdentity{
		{ID: "lamp", PartitionKey: east}, {ID: "c", PartitionKey: west}, {ID: "nothing", PartitionKey: west},
	}, nil)
	if err != nil || len(many.Items) != 2 {
		t.Fatalf("ReadManyItems: %d items, %v; want lamp and c", len(many.Items), err)
	}
}
