package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/web"
)

// TestHub_StatusTierAlone: a hub alone on its SQLite store is a tier of
// one: it lists itself as the sequencer, with its edges, and cannot be
// removed.
func TestHub_StatusTierAlone(t *testing.T) {
	s := newNamedHubServer(t, "solo:8080")
	_, b := s.must(t, http.StatusOK, http.MethodGet, "/api/v1/status", "", hubAuth...)
	var st web.HubStatus
	hubDecode(t, b, &st)
	name := s.h.Name()
	if st.Name != name || st.Sequencer != name || len(st.Hubs) != 1 || st.Takeovers == nil || len(st.Takeovers) != 0 {
		t.Fatalf("status %s: want name and sequencer %q, one hub, no takeovers", b, name)
	}
	if h := st.Hubs[0]; h.Name != name || h.Order != 1 || !h.Online || !h.Sequencer || h.Edges != 0 {
		t.Fatalf("hubs[0]=%+v, want %q, order 1, online, sequencer, no edges", h, name)
	}
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{name: "itself", path: "/api/v1/hubs/" + name, status: http.StatusBadRequest, code: "bad_request"},
		{name: "another", path: "/api/v1/hubs/other", status: http.StatusNotFound, code: "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := s.do(t, http.MethodDelete, tc.path, "", hubAuth...)
			hubCheckError(t, http.MethodDelete, resp, b, tc.status, tc.code)
		})
	}
	resp, b := s.raw(t, http.MethodDelete, "/api/v1/hubs/other", "")
	hubCheckError(t, http.MethodDelete, resp, b, http.StatusUnauthorized, "unauthorized")
	_, b = s.must(t, http.StatusOK, http.MethodGet, "/metrics", "")
	for _, want := range []string{"\nedgesync_hub_lease_held 1\n", "\nedgesync_hub_takeovers_total 0\n"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

// newNamedHubServer is newHubServer with a hub named name.
func newNamedHubServer(t *testing.T, name string) *hubServer {
	t.Helper()
	ctx := context.Background()
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: t.TempDir(), Durability: "normal"}), Name: name})
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
