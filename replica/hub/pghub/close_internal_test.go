package pghub

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// TestStore_CloseDoesNotWaitForAConnectionStillClosing: a query cut short
// by its context breaks its connection, which pgx then closes in the
// background, waiting up to 15 s for the server to end it. When the
// network to the server has gone silent, that is the whole 15 s: longer
// than a hub is given to stop at SIGTERM. Close returns once the writer has
// stopped, without waiting for that connection.
func TestStore_CloseDoesNotWaitForAConnectionStillClosing(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(srv, "postgres", "127.0.0.1:0", u.Host)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	u.Host = proxy.Listen
	s := New(Config{URL: u.String()})
	if err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// The network goes silent both ways: nothing reaches the server, nothing
	// comes back, no connection is closed.
	for _, stream := range []string{"upstream", "downstream"} {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"silent-` + stream + `","type":"timeout","stream":"` + stream + `","attributes":{"timeout":0}}`)); err != nil {
			t.Fatal(err)
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s.Heads(qctx)
	cancel()
	if err == nil {
		t.Fatal("read heads through a silent network: no error")
	}
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- s.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d > poolCloseWait+time.Second {
			t.Fatalf("Close took %v, want at most %v", d, poolCloseWait+time.Second)
		}
	case <-time.After(poolCloseWait + 5*time.Second):
		t.Fatalf("Close still waiting %v later for a connection closing in the background", time.Since(start))
	}
}
