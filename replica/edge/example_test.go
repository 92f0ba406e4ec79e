package edge_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesync/edgesync/client"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/web"
)

// Example embeds a whole edge node in a Go program: the replica (SQLite in
// a directory), the syncer that keeps it in sync with a hub, the local HTTP
// API for the program's other parts, and an orderly shutdown. The program
// writes through the replica and reads over HTTP with the Go client; until
// the hub confirms the write, it is tentative.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "edge-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The replica: every write is durable here first, online or not.
	r := edge.New(edge.Config{Dir: dir, Durability: "full"})
	if err := r.Open(ctx); err != nil {
		log.Fatal(err)
	}

	// The syncer: connects to the first reachable hub with the edge's token
	// (cloudhub's POST /api/v1/edges gave it), pushes the outbox, applies
	// what the hub confirms, and reconnects with backoff. SetOnline(false)
	// pauses it; the writes wait in the outbox meanwhile.
	link, err := edge.NewLink(r, edge.SyncConfig{
		Hubs:  []string{cmp.Or(os.Getenv("EDGESYNC_HUB"), "http://127.0.0.1:8080")},
		Token: os.Getenv("EDGESYNC_EDGE_TOKEN"),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := link.SetOnline(true); err != nil {
		log.Fatal(err)
	}

	// The local HTTP API (docs/api.md), on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// Requests live in base, which shutdown cancels first: live change
	// streams end with it (http.Server.Shutdown does not wait for them).
	base, cancelBase := context.WithCancel(ctx)
	srv := &http.Server{
		Handler:           web.NewEdge(r, web.EdgeOptions{Sync: link, Listen: ln.Addr().String()}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	// Write through the replica...
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		log.Fatal(err)
	}
	if _, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools","price":12}`)); err != nil {
		log.Fatal(err)
	}
	// ...and read over HTTP, as another part of the program would.
	c, err := client.New(client.Config{URL: "http://" + ln.Addr().String()})
	if err != nil {
		log.Fatal(err)
	}
	doc, err := c.Get(ctx, "products", "p1", client.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var p struct {
		Price float64 `json:"price"`
	}
	if err := doc.Decode(&p); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s costs %v, tentative: %v\n", doc.ID, p.Price, doc.Tentative)

	// Shutdown, outside in: the HTTP API (its streams, then the server),
	// then the syncer (it ends its connection to the hub), then the
	// replica (it closes the database).
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cancelBase()
	if err := srv.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	if err := link.Close(sctx); err != nil {
		log.Fatal(err)
	}
	if err := r.Close(sctx); err != nil {
		log.Fatal(err)
	}
	// Output: p1 costs 12, tentative: true
}

// TestExample_QuotedInDocs: docs/clients.md quotes Example as it is, so
// the documented embedding is the one go test runs.
func TestExample_QuotedInDocs(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "clients.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(src, []byte("func Example() {"))
	end := bytes.Index(src[start:], []byte("\n}\n"))
	if start < 0 || end < 0 {
		t.Fatal("example_test.go: no func Example")
	}
	if body := src[start : start+end+3]; !bytes.Contains(doc, body) {
		t.Fatalf("docs/clients.md does not quote func Example of replica/edge/example_test.go as it is: copy it into the section Embedding an edge")
	}
}
