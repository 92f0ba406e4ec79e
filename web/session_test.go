package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/web"
)

// clock is a settable time source for a hub under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newClockedHubServer is newHubServer on a clock the test moves.
func newClockedHubServer(t *testing.T, now func() time.Time) *hubServer {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: t.TempDir(), Durability: "normal"}), Now: now})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	base, cancel := context.WithCancel(ctx)
	srv := httptest.NewServer(web.NewHub(h, web.HubOptions{AdminToken: hubAdminToken, BaseContext: base}))
	t.Cleanup(srv.Close)
	t.Cleanup(cancel)
	return &hubServer{url: srv.URL, h: h, c: srv.Client()}
}

// login opens a dashboard session as the dashboard's page does and returns
// the Cookie header value.
func (s *hubServer) login(t *testing.T) string {
	t.Helper()
	resp, b := s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"`+hubAdminToken+`"}`, "Origin", s.url, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %s cookies %v", resp.StatusCode, b, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	return ck.Name + "=" + ck.Value
}

// edgeNames lists the registered edges, asked with the admin token.
func (s *hubServer) edgeNames(t *testing.T) string {
	t.Helper()
	_, b := s.must(t, http.StatusOK, http.MethodGet, "/api/v1/edges", "")
	var body struct {
		Edges []hub.Edge `json:"edges"`
	}
	hubDecode(t, b, &body)
	names := make([]string, len(body.Edges))
	for i, e := range body.Edges {
		names[i] = e.Name
	}
	return strings.Join(names, ",")
}

// TestHub_SessionCrossSite: a page of another site cannot use the
// dashboard's session to change anything (here: register an edge and read
// its token, or revoke one); the dashboard's own requests and bearer-token
// clients go through.
func TestHub_SessionCrossSite(t *testing.T) {
	s := newHubServer(t)
	cookie := s.login(t)
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/edges", `{"name":"kept"}`)
	const evil = "https://evil.example"
	for _, tt := range []struct {
		name   string
		method string
		path   string
		body   string
		header []string
		want   int
		code   string
	}{
		{"form-like POST from another site", http.MethodPost, "/api/v1/edges", `{"name":"x1"}`,
			[]string{"Origin", evil, "Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}, http.StatusForbidden, "forbidden"},
		{"JSON POST from another site", http.MethodPost, "/api/v1/edges", `{"name":"x2"}`,
			[]string{"Origin", evil}, http.StatusForbidden, "forbidden"},
		{"POST from another port of this host", http.MethodPost, "/api/v1/edges", `{"name":"x3"}`,
			[]string{"Origin", strings.Replace(s.url, "127.0.0.1:", "127.0.0.1:1", 1), "Sec-Fetch-Site", "same-site"}, http.StatusForbidden, "forbidden"},
		{"POST a browser marks cross-site without Origin", http.MethodPost, "/api/v1/edges", `{"name":"x4"}`,
			[]string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "forbidden"},
		{"POST that says nothing of its origin", http.MethodPost, "/api/v1/edges", `{"name":"x5"}`,
			nil, http.StatusForbidden, "forbidden"},
		{"text/plain POST from the dashboard's origin", http.MethodPost, "/api/v1/edges", `{"name":"x6"}`,
			[]string{"Origin", s.url, "Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"revoke from another site", http.MethodDelete, "/api/v1/edges/kept", "",
			[]string{"Origin", evil}, http.StatusForbidden, "forbidden"},
		{"container change from another site", http.MethodPut, "/api/v1/containers/c1", `{"partitionKey":"/pk"}`,
			[]string{"Origin", evil}, http.StatusForbidden, "forbidden"},
		{"read from another site", http.MethodGet, "/api/v1/edges", "",
			[]string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.raw(t, tt.method, tt.path, tt.body, append([]string{"Cookie", cookie}, tt.header...)...)
			hubCheckError(t, tt.method, resp, b, tt.want, tt.code)
		})
	}
	if got, want := s.edgeNames(t), "kept"; got != want {
		t.Fatalf("edges %q after the refused requests, want %q", got, want)
	}
	// The dashboard's own requests work.
	same := []string{"Cookie", cookie, "Origin", s.url, "Sec-Fetch-Site", "same-origin"}
	if resp, b := s.raw(t, http.MethodPost, "/api/v1/edges", `{"name":"mine"}`, same...); resp.StatusCode != http.StatusCreated {
		t.Fatalf("dashboard POST /api/v1/edges: %d %s, want 201", resp.StatusCode, b)
	}
	if resp, b := s.raw(t, http.MethodDelete, "/api/v1/edges/mine", "", same...); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("dashboard DELETE /api/v1/edges/mine: %d %s, want 204", resp.StatusCode, b)
	}
	if resp, b := s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard GET /api/v1/status: %d %s, want 200", resp.StatusCode, b)
	}
	// A bearer-token client is not a browser session: its requests are as
	// before, whatever their Content-Type.
	if resp, b := s.do(t, http.MethodPost, "/api/v1/edges", `{"name":"api"}`, "Content-Type", "application/x-www-form-urlencoded"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bearer POST /api/v1/edges: %d %s, want 201", resp.StatusCode, b)
	}
	// Login itself is refused from another site.
	resp, b := s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"`+hubAdminToken+`"}`, "Origin", evil)
	hubCheckError(t, http.MethodPost, resp, b, http.StatusForbidden, "forbidden")
}

// TestHub_SessionIsNotTheToken: the cookie holds an opaque session id, not
// the admin token, and a cookie carrying the admin token is not a session.
func TestHub_SessionIsNotTheToken(t *testing.T) {
	s := newHubServer(t)
	cookie := s.login(t)
	if strings.TrimPrefix(cookie, "edgesync_admin=") == hubAdminToken {
		t.Fatalf("cookie %q carries the admin token", cookie)
	}
	resp, b := s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", "edgesync_admin="+hubAdminToken)
	hubCheckError(t, http.MethodGet, resp, b, http.StatusUnauthorized, "unauthorized")
}

// TestHub_SessionLogoutRevokes: after logout a copy of the cookie no longer
// works.
func TestHub_SessionLogoutRevokes(t *testing.T) {
	s := newHubServer(t)
	cookie := s.login(t)
	if resp, b := s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("status with the session: %d %s", resp.StatusCode, b)
	}
	resp, b := s.raw(t, http.MethodDelete, "/api/v1/session", "", "Cookie", cookie, "Origin", s.url)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %s, cookies %v, want 204 and the cookie cleared", resp.StatusCode, b, resp.Cookies())
	}
	resp, b = s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie)
	hubCheckError(t, http.MethodGet, resp, b, http.StatusUnauthorized, "unauthorized")
}

// TestHub_SessionExpiry: a session ends DefaultSessionTTL (12 h) after
// login; the cookie says so too.
func TestHub_SessionExpiry(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s := newClockedHubServer(t, clk.Now)
	resp, b := s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"`+hubAdminToken+`"}`, "Origin", s.url)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	ck := resp.Cookies()[0]
	if ck.MaxAge != 12*60*60 {
		t.Fatalf("cookie Max-Age=%d, want %d", ck.MaxAge, 12*60*60)
	}
	cookie := ck.Name + "=" + ck.Value
	clk.advance(12*time.Hour - time.Minute)
	if resp, b := s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("status 11h59m after login: %d %s, want 200", resp.StatusCode, b)
	}
	clk.advance(time.Minute)
	resp, b = s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie)
	hubCheckError(t, http.MethodGet, resp, b, http.StatusUnauthorized, "unauthorized")
}

// TestHub_SessionCookieSecure: over TLS the session cookie is Secure,
// HttpOnly and SameSite=Strict.
func TestHub_SessionCookieSecure(t *testing.T) {
	ctx := context.Background()
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: t.TempDir(), Durability: "normal"})})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	srv := httptest.NewTLSServer(web.NewHub(h, web.HubOptions{AdminToken: hubAdminToken}))
	t.Cleanup(srv.Close)
	s := &hubServer{url: srv.URL, h: h, c: srv.Client()}
	resp, b := s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"`+hubAdminToken+`"}`, "Origin", s.url)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	if ck := resp.Cookies()[0]; !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie %+v, want Secure, HttpOnly, SameSite=Strict", ck)
	}
}
