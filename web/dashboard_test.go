package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

func TestHub_Session(t *testing.T) {
	s := newHubServer(t)
	resp, b := s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"wrong"}`, "Origin", s.url)
	hubCheckError(t, "POST /api/v1/session (wrong token)", resp, b, http.StatusUnauthorized, "unauthorized")
	if len(resp.Cookies()) != 0 {
		t.Fatalf("a wrong token got a cookie: %v", resp.Cookies())
	}
	resp, b = s.raw(t, http.MethodPost, "/api/v1/session", `{"token":"`+hubAdminToken+`"}`, "Origin", s.url)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %s cookies %v", resp.StatusCode, b, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("cookie %+v, want HttpOnly, SameSite=Strict, Path=/", ck)
	}
	cookie := ck.Name + "=" + ck.Value
	if resp, b := s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("status with the cookie: %d %s", resp.StatusCode, b)
	}
	resp, b = s.raw(t, http.MethodGet, "/api/v1/status", "", "Cookie", ck.Name+"=stale")
	hubCheckError(t, "GET /api/v1/status (stale cookie)", resp, b, http.StatusUnauthorized, "unauthorized")
	resp, _ = s.raw(t, http.MethodDelete, "/api/v1/session", "", "Origin", s.url)
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d, cookies %v, want the cookie cleared", resp.StatusCode, resp.Cookies())
	}
	resp, b = s.raw(t, http.MethodPost, "/api/v1/session", `not json`, "Origin", s.url)
	hubCheckError(t, "POST /api/v1/session (bad body)", resp, b, http.StatusBadRequest, "bad_request")
}

func TestHub_UIServed(t *testing.T) {
	s := newHubServer(t)
	for _, tt := range []struct {
		path, ctype string
		status      int
	}{
		{"/", "text/html", http.StatusOK},
		{"/ui/app.js", "javascript", http.StatusOK},
		{"/ui/style.css", "text/css", http.StatusOK},
		{"/ui/common/diff.js", "javascript", http.StatusOK},
		{"/ui/nope.js", "", http.StatusNotFound},
		{"/ui/../hub.go", "", http.StatusNotFound},
	} {
		resp, b := s.raw(t, http.MethodGet, tt.path, "")
		if resp.StatusCode != tt.status || !strings.Contains(resp.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("GET %s: %d %q (%.80s), want %d %q", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.status, tt.ctype)
		}
		if tt.status == http.StatusOK && resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", tt.path)
		}
	}
}

// TestHub_DashboardAPI covers the containers list with counts, an item's
// version history, the unresolved count and the live event stream.
func TestHub_DashboardAPI(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "notes", `{"partitionKey":"/pk","conflictPolicy":{"mode":"manual"}}`)
	s.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/notes/docs/n1", `{"id":"n1","pk":"a","v":0}`)
	base := s.version(t, "notes", "n1")

	events := openEvents(t, s.c, s.url, hubAuth...)
	next := events.next
	var st struct {
		LSN        int64 `json:"lsn"`
		Unresolved int64 `json:"unresolvedConflicts"`
	}
	if err := json.Unmarshal(next("status"), &st); err != nil || st.LSN != 1 {
		t.Fatalf("first status %+v, %v; want lsn 1", st, err)
	}

	// Two concurrent versions: the second one conflicts (manual policy).
	s.push(t, "e1", wire.Version{Container: "notes", ID: "n1", Op: replica.OpReplace, Version: "e1-1", Base: base, TS: 1, Body: json.RawMessage(`{"id":"n1","pk":"a","v":1}`)})
	s.push(t, "e2", wire.Version{Container: "notes", ID: "n1", Op: replica.OpReplace, Version: "e2-1", Base: base, TS: 1, Body: json.RawMessage(`{"id":"n1","pk":"a","v":2}`)})
	// The stream reads the log and counts the conflicts one after the other,
	// so the new count may come before the record (both pushes landing
	// between the two reads): take them in either order.
	seen := map[string]json.RawMessage{}
	for len(seen) < 2 {
		ev := events.nextOf("change", "conflict")
		if seen[ev.event] == nil {
			seen[ev.event] = json.RawMessage(ev.data)
		}
	}
	var ch struct{ Container, ID, Version, Origin string }
	if err := json.Unmarshal(seen["change"], &ch); err != nil || ch.Version != "e1-1" || ch.Container != "notes" {
		t.Fatalf("change event %+v, %v; want e1-1 in notes", ch, err)
	}
	var cf struct {
		Unresolved int64 `json:"unresolvedConflicts"`
	}
	if err := json.Unmarshal(seen["conflict"], &cf); err != nil || cf.Unresolved != 1 {
		t.Fatalf("conflict event %+v, %v; want 1 unresolved", cf, err)
	}

	var list struct {
		Containers []struct {
			Name       string `json:"name"`
			ItemCount  int64  `json:"itemCount"`
			Unresolved int64  `json:"unresolvedConflicts"`
		} `json:"containers"`
	}
	_, b := s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers", "")
	hubDecode(t, b, &list)
	if len(list.Containers) != 1 || list.Containers[0].ItemCount != 1 || list.Containers[0].Unresolved != 1 {
		t.Fatalf("containers %s, want notes with 1 item and 1 unresolved conflict", b)
	}
	var vs struct {
		Versions []struct {
			Version   string          `json:"version"`
			Confirmed bool            `json:"confirmed"`
			Outcome   string          `json:"outcome"`
			Document  json.RawMessage `json:"document"`
		} `json:"versions"`
	}
	_, b = s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/notes/docs/n1/versions", "")
	hubDecode(t, b, &vs)
	if len(vs.Versions) != 3 || !vs.Versions[0].Confirmed || !vs.Versions[1].Confirmed || vs.Versions[2].Confirmed ||
		vs.Versions[2].Version != "e2-1" || vs.Versions[2].Outcome != replica.OutcomeLost {
		t.Fatalf("versions %s, want the base and e1-1 confirmed, then e2-1 lost", b)
	}
	resp2, b := s.do(t, http.MethodGet, "/api/v1/containers/notes/docs/nope/versions", "")
	hubCheckError(t, "versions of a missing item", resp2, b, http.StatusNotFound, "not_found")
	_, b = s.must(t, http.StatusOK, http.MethodGet, "/api/v1/status", "")
	if err := json.Unmarshal(b, &st); err != nil || st.Unresolved != 1 {
		t.Fatalf("status %s, want unresolvedConflicts 1", b)
	}
	resp2, b = s.do(t, http.MethodPost, "/api/v1/resolvers/none/try", `{"container":"notes","conflict":1}`)
	hubCheckError(t, "try without a wasm host", resp2, b, http.StatusBadRequest, "bad_request")
}

// TestEdge_EventsAndOffline checks the edge page's stream (status first,
// then a change record of any container) and that airplane mode needs a hub.
func TestEdge_EventsAndOffline(t *testing.T) {
	s := newServer(t)
	s.putContainer(t, "notes", "/pk")
	next := openEvents(t, s.c, s.url).next
	var st struct {
		NodeID  string `json:"nodeId"`
		Offline bool   `json:"offline"`
	}
	if err := json.Unmarshal(next("status"), &st); err != nil || st.NodeID == "" {
		t.Fatalf("status event %+v, %v", st, err)
	}
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n1","pk":"a"}`)
	var ch replica.Change
	if err := json.Unmarshal(next("change"), &ch); err != nil || ch.Container != "notes" || ch.ID != "n1" || !ch.Tentative || ch.Document != nil {
		t.Fatalf("change event %+v, %v; want n1 in notes, tentative, without its document", ch, err)
	}
	resp2, b := s.do(t, http.MethodPost, "/api/v1/sync/offline", "")
	checkError(t, resp2, b, http.StatusBadRequest, "bad_request")
}

// openEvents opens GET /api/v1/events (hdr: header names and values in
// turn) and returns a function that waits for the next event of a name.
// The stream is closed when the test ends.
func openEvents(t *testing.T, c *http.Client, base string, hdr ...string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close(); cancel() })
	events := make(chan sseEvent, 64)
	go readEvents(resp.Body, events)
	return &eventStream{t: t, events: events}
}

// eventStream reads an open event stream.
type eventStream struct {
	t      *testing.T
	events <-chan sseEvent
}

// next reads events until one named name arrives and returns its data.
func (s *eventStream) next(name string) json.RawMessage {
	s.t.Helper()
	return json.RawMessage(s.nextOf(name).data)
}

// nextOf reads events until one named one of names arrives (20 s in all).
// Events of other names are skipped.
func (s *eventStream) nextOf(names ...string) sseEvent {
	t := s.t
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("stream ended, want %v", names)
			}
			if slices.Contains(names, ev.event) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event within 20s", names)
		}
	}
}
