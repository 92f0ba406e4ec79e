package web_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/web"
)

const evilOrigin = "https://evil.example"

// TestEdge_CrossOriginWrite: a page of another site cannot write through
// the edge's local API, with the body types it can send without asking
// (text/plain) or any other; a same-origin body must be JSON.
func TestEdge_CrossOriginWrite(t *testing.T) {
	s := newServer(t)
	s.putContainer(t, "notes", "/pk")
	for _, tt := range []struct {
		name   string
		method string
		path   string
		header []string
		want   int
		code   string
	}{
		{"text/plain POST from another site", http.MethodPost, "/api/v1/containers/notes/docs",
			[]string{"Content-Type", "text/plain", "Origin", evilOrigin, "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "forbidden"},
		{"form POST from another port of localhost", http.MethodPost, "/api/v1/containers/notes/docs",
			[]string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://localhost:3000", "Sec-Fetch-Site", "same-site"}, http.StatusForbidden, "forbidden"},
		{"no-cors POST without Content-Type", http.MethodPost, "/api/v1/containers/notes/docs",
			[]string{"Content-Type", "", "Origin", evilOrigin}, http.StatusForbidden, "forbidden"},
		{"JSON PUT from another site", http.MethodPut, "/api/v1/containers/notes/docs/n1",
			[]string{"Origin", evilOrigin}, http.StatusForbidden, "forbidden"},
		{"text/plain POST from this origin", http.MethodPost, "/api/v1/containers/notes/docs",
			[]string{"Content-Type", "text/plain", "Origin", s.url, "Sec-Fetch-Site", "same-origin"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain POST from a non-browser client", http.MethodPost, "/api/v1/containers/notes/docs",
			[]string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"read from another site", http.MethodGet, "/api/v1/containers/notes/docs/n1",
			[]string{"Origin", evilOrigin, "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"id":"n1","pk":"a"}`
			if tt.method == http.MethodGet {
				body = ""
			}
			resp, b := s.do(t, tt.method, tt.path, body, tt.header...)
			checkError(t, resp, b, tt.want, tt.code)
		})
	}
	resp, b := s.do(t, http.MethodGet, "/api/v1/containers/notes/docs/n1", "")
	checkError(t, resp, b, http.StatusNotFound, "not_found")
	// The page's own requests, and plain API clients, go through.
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n1","pk":"a"}`,
		"Origin", s.url, "Sec-Fetch-Site", "same-origin")
	s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/notes/docs/n1", "", "Sec-Fetch-Site", "same-origin")
	s.must(t, http.StatusOK, http.MethodGet, "/", "", "Sec-Fetch-Site", "none")
	// Another site (the hub's dashboard, say) may link to the page.
	s.must(t, http.StatusOK, http.MethodGet, "/", "", "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate")
	s.must(t, http.StatusOK, http.MethodGet, "/ui/app.js", "", "Sec-Fetch-Site", "same-origin")
}

// TestEdge_HostNotAllowed: a request for another host name (a name of
// the attacker's pointed at this node: DNS rebinding) reads nothing.
func TestEdge_HostNotAllowed(t *testing.T) {
	s := newServer(t)
	s.putContainer(t, "notes", "/pk")
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n1","pk":"a"}`)
	port := s.url[strings.LastIndex(s.url, ":"):]
	for _, host := range []string{"evil.example" + port, "evil.example", "localhost.evil.example" + port, "127.0.0.1.nip.io" + port} {
		resp, b := s.do(t, http.MethodGet, "/api/v1/containers/notes/docs", "", "Host", host)
		checkError(t, resp, b, http.StatusForbidden, "forbidden")
		if strings.Contains(string(b), "n1") {
			t.Fatalf("Host %s: body %s shows a document", host, b)
		}
	}
	for _, host := range []string{"localhost" + port, "LOCALHOST" + port, "127.0.0.1" + port, "[::1]" + port} {
		s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/notes/docs", "", "Host", host)
	}
	s.must(t, http.StatusOK, http.MethodGet, "/healthz", "", "Host", "evil.example")
}

// TestEdge_AirplaneSwitchCrossOrigin: a page of another site cannot take
// the node off (or on) line.
func TestEdge_AirplaneSwitchCrossOrigin(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir()})
	if err := r.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	l, err := edge.NewLink(r, edge.SyncConfig{Hubs: []string{"ws://127.0.0.1:1/api/v1/sync"}, Token: "x"})
	if err != nil {
		t.Fatalf("NewLink: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := l.Close(cctx); err != nil {
			t.Errorf("Link.Close: %v", err)
		}
		if err := r.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	srv := newHTTPServer(t, web.NewEdge(r, web.EdgeOptions{Sync: l}))
	s := &server{url: srv.URL, r: r, c: srv.Client()}
	for _, hdr := range [][]string{
		{"Origin", evilOrigin, "Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"},
		{"Origin", "null"},
		{"Host", "evil.example"},
	} {
		resp, b := s.do(t, http.MethodPost, "/api/v1/sync/online", "", hdr...)
		checkError(t, resp, b, http.StatusForbidden, "forbidden")
	}
	if l.Online() {
		t.Fatalf("the node went online on a refused request")
	}
	s.must(t, http.StatusNoContent, http.MethodPost, "/api/v1/sync/online", "", "Origin", s.url, "Sec-Fetch-Site", "same-origin")
	if !l.Online() {
		t.Fatalf("the node's own page could not take it online")
	}
}

// newEdgeServerWith serves an edge with opt until the test ends.
func newEdgeServerWith(t *testing.T, opt web.EdgeOptions) *server {
	t.Helper()
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir()})
	if err := r.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	srv := newHTTPServer(t, web.NewEdge(r, opt))
	return &server{url: srv.URL, r: r, c: srv.Client()}
}

// TestEdge_CORSOrigin: an origin allowed with --cors-origin gets its
// preflight answered (with the headers the API takes) and can read and
// write; any other origin cannot.
func TestEdge_CORSOrigin(t *testing.T) {
	const app = "https://app.example:8443"
	s := newEdgeServerWith(t, web.EdgeOptions{CORSOrigins: []string{app}})
	s.putContainer(t, "notes", "/pk")
	pre := []string{"Origin", app, "Sec-Fetch-Site", "cross-site", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "content-type,if-match"}
	resp, _ := s.must(t, http.StatusNoContent, http.MethodOptions, "/api/v1/containers/notes/docs/n1", "", pre...)
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != app || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "If-Match") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight headers %v, want the origin allowed with PUT, Content-Type and If-Match", h)
	}
	resp, _ = s.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/notes/docs/n1", `{"id":"n1","pk":"a"}`, "Origin", app, "Sec-Fetch-Site", "cross-site")
	if resp.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("response headers %v, want the origin allowed and ETag exposed", resp.Header)
	}
	pre[1] = evilOrigin
	resp, b := s.do(t, http.MethodOptions, "/api/v1/containers/notes/docs/n1", "", pre...)
	checkError(t, resp, b, http.StatusForbidden, "forbidden")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("Access-Control-Allow-Origin=%q for an origin not allowed", got)
	}
	resp, b = s.do(t, http.MethodGet, "/api/v1/containers/notes/docs/n1", "", "Origin", evilOrigin)
	checkError(t, resp, b, http.StatusForbidden, "forbidden")
}

// TestEdge_LocalToken: with a local token (a node listening beyond
// loopback has one), every API call needs it, as a bearer token or as the
// page's cookie; the health check and the page itself do not.
func TestEdge_LocalToken(t *testing.T) {
	const tok = "esl_secret"
	s := newEdgeServerWith(t, web.EdgeOptions{LocalToken: tok})
	bearer := []string{"Authorization", "Bearer " + tok}
	for _, tt := range []struct {
		method, path, body string
		header             []string
	}{
		{http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, nil},
		{http.MethodGet, "/api/v1/status", "", nil},
		{http.MethodPost, "/api/v1/sync/offline", "", nil},
		{http.MethodGet, "/metrics", "", nil},
		{http.MethodGet, "/api/v1/status", "", []string{"Authorization", "Bearer wrong"}},
		{http.MethodGet, "/api/v1/status", "", []string{"Cookie", "edgesync_local=wrong"}},
	} {
		resp, b := s.do(t, tt.method, tt.path, tt.body, tt.header...)
		checkError(t, resp, b, http.StatusUnauthorized, "unauthorized")
	}
	s.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, bearer...)
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n1","pk":"a"}`, "Cookie", "edgesync_local="+tok)
	s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/notes/docs/n1", "", bearer...)
	s.must(t, http.StatusOK, http.MethodGet, "/healthz", "")
	s.must(t, http.StatusOK, http.MethodGet, "/", "")
	s.must(t, http.StatusOK, http.MethodGet, "/ui/app.js", "")
}

// TestEdge_AllowedHosts: configured names are answered besides the
// loopback ones; the defaults follow the listen address.
func TestEdge_AllowedHosts(t *testing.T) {
	s := newEdgeServerWith(t, web.EdgeOptions{AllowedHosts: []string{"edge.lan", "192.0.2.7"}})
	for _, tt := range []struct {
		host string
		want int
	}{
		{"edge.lan:7070", http.StatusOK},
		{"EDGE.LAN.", http.StatusOK},
		{"192.0.2.7", http.StatusOK},
		{"localhost:7070", http.StatusOK},
		{"[::1]:7070", http.StatusOK},
		{"edge.lan.evil.example", http.StatusForbidden},
		{"192.0.2.8", http.StatusForbidden},
	} {
		if resp, b := s.do(t, http.MethodGet, "/api/v1/status", "", "Host", tt.host); resp.StatusCode != tt.want {
			t.Errorf("Host %q: %d %s, want %d", tt.host, resp.StatusCode, b, tt.want)
		}
	}
	if got := web.DefaultAllowedHosts("192.0.2.7:7070"); !slices.Contains(got, "192.0.2.7") || !slices.Contains(got, "localhost") || len(got) != 4 {
		t.Errorf("DefaultAllowedHosts(192.0.2.7:7070) = %v, want the loopback names and 192.0.2.7", got)
	}
	name, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	for _, listen := range []string{"0.0.0.0:7070", ":7070", "[::]:7070"} {
		if got := web.DefaultAllowedHosts(listen); !slices.Contains(got, name) || !slices.Contains(got, "127.0.0.1") {
			t.Errorf("DefaultAllowedHosts(%s) = %v, want the host name %q and the machine's addresses", listen, got, name)
		}
	}
}
