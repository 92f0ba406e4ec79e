package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/web"
)

// rawRequest sends the bytes of a request as they are (net/http's client
// would refuse a malformed one) and reads the response.
func rawRequest(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// TestListener_MalformedRequest: requests that net/http refuses before any
// handler (a bad path escape, a missing Host) get the JSON error body on
// both APIs, and well-formed ones are served as before.
func TestListener_MalformedRequest(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir()})
	if err := r.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: t.TempDir(), Durability: "normal"})})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, api := range []struct {
		name string
		h    http.Handler
		auth string
	}{
		{"edge", web.NewEdge(r, web.EdgeOptions{}), ""},
		{"hub", web.NewHub(h, web.HubOptions{AdminToken: hubAdminToken}), "Authorization: Bearer " + hubAdminToken + "\r\n"},
	} {
		t.Run(api.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(api.h)
			srv.Listener = web.Listener(srv.Listener)
			srv.Start()
			t.Cleanup(srv.Close)
			addr := srv.Listener.Addr().String()
			for _, tt := range []struct{ name, request, message string }{
				{"bad escape in an id", "GET /api/v1/containers/c/docs/%zz HTTP/1.1\r\nHost: " + addr + "\r\n" + api.auth + "\r\n", "malformed"},
				{"bad escape in a container", "PUT /api/v1/containers/c%2/docs/x HTTP/1.1\r\nHost: " + addr + "\r\n" + api.auth + "Content-Length: 2\r\n\r\n{}", "malformed"},
				{"no Host", "GET /api/v1/status HTTP/1.1\r\n" + api.auth + "\r\n", "Host"},
			} {
				resp, b := rawRequest(t, addr, tt.request)
				if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("%s: %d %q %s, want 400 application/json", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), b)
				}
				var e web.Error
				if err := json.Unmarshal(b, &e); err != nil || e.Code != "bad_request" || !strings.Contains(e.Message, tt.message) {
					t.Fatalf("%s: body %s (%v), want {\"code\":\"bad_request\"} with a message naming %q", tt.name, b, err, tt.message)
				}
			}
			resp, b := rawRequest(t, addr, "GET /api/v1/status HTTP/1.1\r\nHost: "+addr+"\r\n"+api.auth+"Connection: close\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("a well-formed request: %d %s, want 200", resp.StatusCode, b)
			}
		})
	}
}
