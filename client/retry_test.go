package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/client"
)

// flaky serves a real hub's API, except that once armed, the first `fail`
// requests get fault instead; it counts the requests since it was armed.
type flaky struct {
	next     http.Handler
	fail     int64
	fault    func(w http.ResponseWriter)
	armed    atomic.Bool
	requests atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.armed.Load() && f.requests.Add(1) <= f.fail {
		f.fault(w)
		return
	}
	f.next.ServeHTTP(w, r)
}

// unavailable answers 503 with the API's error body.
func unavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(`{"code":"unavailable","message":"shutting down"}` + "\n"))
}

// badGateway answers 502 as a proxy would, with a page.
func badGateway(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	w.Write([]byte("<html>upstream gone</html>"))
}

// hangUp closes the connection without an answer, after reading the
// request.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// newFlakyHub serves a real hub behind f on loopback and returns a client
// of it with millisecond backoffs.
func newFlakyHub(t *testing.T, fail int64, fault func(http.ResponseWriter), cfg client.Config) (*flaky, *client.Client) {
	t.Helper()
	h := newTestHub(t)
	f := &flaky{next: h.srv.Config.Handler, fail: fail, fault: fault}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg.URL, cfg.Token = srv.URL, adminToken
	c := newClient(t, cfg)
	// The container and the document the calls use, before the faults.
	setup := newClient(t, client.Config{URL: srv.URL, Token: adminToken})
	if _, _, err := setup.PutContainer(context.Background(), client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Create(context.Background(), "products", product{ID: "p0", Category: "tools"}); err != nil {
		t.Fatal(err)
	}
	f.armed.Store(true)
	return f, c
}

// TestClient_RetrySafeCalls: a server that fails twice (503, a proxy's 502
// page, a connection closed without an answer) and then answers: the calls
// that may be repeated succeed on the third attempt.
func TestClient_RetrySafeCalls(t *testing.T) {
	ctx := context.Background()
	faults := map[string]func(http.ResponseWriter){"503": unavailable, "502 page": badGateway, "hang-up": hangUp}
	calls := []struct {
		name string
		call func(c *client.Client) error
	}{
		{"GET status", func(c *client.Client) error { _, err := c.HubStatus(ctx); return err }},
		{"GET document", func(c *client.Client) error { _, err := c.Get(ctx, "products", "p0", client.ReadOptions{}); return err }},
		{"HEAD document", func(c *client.Client) error { _, err := c.ETag(ctx, "products", "p0"); return err }},
		{"PUT upsert", func(c *client.Client) error {
			_, _, err := c.Put(ctx, "products", "p1", product{ID: "p1", Category: "tools"}, client.WriteOptions{})
			return err
		}},
		{"PUT container", func(c *client.Client) error {
			_, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"})
			return err
		}},
	}
	for fname, fault := range faults {
		for _, tt := range calls {
			t.Run(fname+"/"+tt.name, func(t *testing.T) {
				f, c := newFlakyHub(t, 2, fault, client.Config{})
				if err := tt.call(c); err != nil {
					t.Fatalf("%s after two faults: %v, want success on the third attempt", tt.name, err)
				}
				if got := f.requests.Load(); got != 3 {
					t.Fatalf("requests=%d, want 3", got)
				}
			})
		}
	}
}

// TestClient_NoRetryUnsafeCalls: a POST create, a PUT with If-Match and a
// DELETE are sent once when the server fails (it may have done them), and
// the error is the server's.
func TestClient_NoRetryUnsafeCalls(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name string
		call func(c *client.Client) error
	}{
		{"POST create", func(c *client.Client) error {
			_, err := c.Create(ctx, "products", product{ID: "p9", Category: "tools"})
			return err
		}},
		{"POST register edge", func(c *client.Client) error { _, err := c.RegisterEdge(ctx, "e9", nil); return err }},
		{"PUT If-Match", func(c *client.Client) error {
			_, _, err := c.Put(ctx, "products", "p0", product{ID: "p0", Category: "tools"}, client.WriteOptions{IfMatch: `"x"`})
			return err
		}},
		{"DELETE", func(c *client.Client) error { return c.Delete(ctx, "products", "p0", client.WriteOptions{}) }},
	}
	for _, tt := range calls {
		t.Run("503/"+tt.name, func(t *testing.T) {
			f, c := newFlakyHub(t, 2, unavailable, client.Config{})
			err := tt.call(c)
			wantAPIError(t, tt.name, err, 503, "unavailable", client.ErrUnavailable)
			if got := f.requests.Load(); got != 1 {
				t.Fatalf("requests=%d, want 1 (not retried)", got)
			}
		})
		t.Run("hang-up/"+tt.name, func(t *testing.T) {
			f, c := newFlakyHub(t, 2, hangUp, client.Config{})
			err := tt.call(c)
			var ae *client.Error
			if err == nil || errors.As(err, &ae) {
				t.Fatalf("%s: err=%v, want the transport's error", tt.name, err)
			}
			if got := f.requests.Load(); got != 1 {
				t.Fatalf("requests=%d, want 1 (not retried)", got)
			}
		})
	}
	t.Run("502 page keeps its status", func(t *testing.T) {
		f, c := newFlakyHub(t, 10, badGateway, client.Config{MaxAttempts: 3})
		_, err := c.HubStatus(ctx)
		wantAPIError(t, "HubStatus behind a failing proxy", err, 502, "bad_gateway", nil)
		if got := f.requests.Load(); got != 3 {
			t.Fatalf("requests=%d, want MaxAttempts 3", got)
		}
	})
	t.Run("MaxAttempts 1", func(t *testing.T) {
		f, c := newFlakyHub(t, 2, unavailable, client.Config{MaxAttempts: 1})
		_, err := c.HubStatus(ctx)
		wantAPIError(t, "HubStatus", err, 503, "unavailable", client.ErrUnavailable)
		if got := f.requests.Load(); got != 1 {
			t.Fatalf("requests=%d, want 1", got)
		}
	})
}

// TestClient_RetryRefusedConnection: a connection that could not be made
// sent nothing, so even a POST is tried again, MaxAttempts times in all.
func TestClient_RetryRefusedConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connections are refused
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	c := newClient(t, client.Config{URL: "http://" + addr, HTTPClient: &http.Client{Transport: tr}, MaxAttempts: 3})
	_, err = c.Create(context.Background(), "products", product{ID: "p1", Category: "tools"})
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("Create to a closed port: err=%v, want the dial error", err)
	}
	if got := dials.Load(); got != 3 {
		t.Fatalf("dials=%d, want 3 (a POST that never connected is retried)", got)
	}

	// A server that comes up while the client backs off gets the POST.
	h := newTestHub(t)
	c = newClient(t, client.Config{URL: "http://" + addr, Token: adminToken, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 50})
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Logf("port %s was taken again before the test could listen on it (%v): the late server is not tried", addr, err)
		return
	}
	srv := &http.Server{Handler: h.srv.Config.Handler, ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	done := make(chan error, 1)
	go func() {
		_, _, err := c.PutContainer(context.Background(), client.Container{Name: "late", PartitionKey: "/k"})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	go srv.Serve(l2)
	if err := <-done; err != nil {
		t.Fatalf("PutContainer while the server starts: %v", err)
	}
}

// TestClient_ResponseLimit: an answer over MaxResponseBytes fails with
// ErrResponseTooLarge and is not retried.
func TestClient_ResponseLimit(t *testing.T) {
	f, c := newFlakyHub(t, 0, nil, client.Config{MaxResponseBytes: 64})
	_, err := c.List(context.Background(), "products", client.ListOptions{})
	if !errors.Is(err, client.ErrResponseTooLarge) {
		t.Fatalf("List over 64 bytes: err=%v, want ErrResponseTooLarge", err)
	}
	if got := f.requests.Load(); got != 1 {
		t.Fatalf("requests=%d, want 1", got)
	}
}

// TestClient_RetryStopsWithContext: a context that ends during the backoff
// ends the call at once with the context's error.
func TestClient_RetryStopsWithContext(t *testing.T) {
	_, c := newFlakyHub(t, 100, unavailable, client.Config{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.HubStatus(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err=%v, want the deadline joined with the last answer (503)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v, want right after the deadline", d)
	}
}
