package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/web"
)

// hubAdminToken is the admin token of every hub under test.
const hubAdminToken = "t"

// hubServer is a hub in a temporary directory served by the hub API over a
// real HTTP connection.
type hubServer struct {
	url string
	h   *hub.Hub
	c   *http.Client
}

func newHubServer(t *testing.T) *hubServer {
	t.Helper()
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
	base, cancel := context.WithCancel(ctx)
	srv := httptest.NewServer(web.NewHub(h, web.HubOptions{AdminToken: hubAdminToken, BaseContext: base}))
	t.Cleanup(srv.Close) // runs before the hub's Close
	t.Cleanup(cancel)    // and this before the server's Close
	return &hubServer{url: srv.URL, h: h, c: srv.Client()}
}

// hubAuth is the header pair that carries the admin token.
var hubAuth = []string{"Authorization", "Bearer " + hubAdminToken}

// raw sends a request with exactly the headers given (names and values in
// turn) and returns the response and its body.
func (s *hubServer) raw(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatalf("NewRequest(%s %s): %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

// do sends a request with the admin token (the later headers win).
func (s *hubServer) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return s.raw(t, method, path, body, append(slices.Clone(hubAuth), hdr...)...)
}

// must sends a request with the admin token and fails the test unless the
// status is want.
func (s *hubServer) must(t *testing.T, want int, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b := s.do(t, method, path, body, hdr...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: Status=%d, want %d; body %.300s", method, path, resp.StatusCode, want, b)
	}
	return resp, b
}

func (s *hubServer) putContainer(t *testing.T, name, def string) {
	t.Helper()
	s.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/"+name, def)
}

// version returns the version id of an item's current confirmed version.
func (s *hubServer) version(t *testing.T, container, id string) string {
	t.Helper()
	it, err := s.h.Get(context.Background(), container, id)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", container, id, err)
	}
	return it.Version
}

// pushedVersion is the version id node gives its write to container in
// TestHub_Conflicts: the node id, '-' and a counter, one per container.
func pushedVersion(node, container string) string {
	return node + "-" + map[string]string{"orders": "101", "held": "102"}[container]
}

// push pushes versions as the edge node nodeID (no scope) and returns the
// outcomes.
func (s *hubServer) push(t *testing.T, nodeID string, vs ...wire.Version) []wire.Outcome {
	t.Helper()
	out, _, err := s.h.Push(context.Background(), nodeID, nil, vs)
	if err != nil {
		t.Fatalf("Push(%s): %v", nodeID, err)
	}
	return out
}

func hubDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %.300s: %v", b, err)
	}
}

func hubObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	hubDecode(t, b, &m)
	return m
}

// hubCheckError checks an error response: status, JSON {"code","message"}
// with the code and a message that says something. A HEAD response has no
// body to check.
func hubCheckError(t *testing.T, method string, resp *http.Response, b []byte, status int, code string) {
	t.Helper()
	if got := resp.StatusCode; got != status {
		t.Fatalf("Status=%d, want %d; body %.300s", got, status, b)
	}
	if method == http.MethodHead {
		return
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Fatalf("Content-Type=%q, want application/json", got)
	}
	var e struct {
		Code    *string `json:"code"`
		Message *string `json:"message"`
	}
	hubDecode(t, b, &e)
	if e.Code == nil || e.Message == nil {
		t.Fatalf("error body %s, want {\"code\",\"message\"}", b)
	}
	if code != "" && *e.Code != code {
		t.Fatalf("code=%q, want %q (message %q)", *e.Code, code, *e.Message)
	}
	if strings.TrimSpace(*e.Message) == "" {
		t.Fatalf("message is empty in %s", b)
	}
}

// hubStep is one request of a hub API scenario. Path, body and header
// values may name values saved by earlier steps as {name}.
type hubStep struct {
	name   string
	method string
	path   string
	body   string
	header []string // name, value, ...
	want   int
	code   string // for an error status: the error code
	save   string // save the response's ETag header under this name
	check  func(t *testing.T, h http.Header, body []byte, vars map[string]string)
}

func hubRunSteps(t *testing.T, s *hubServer, steps []hubStep) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			var pairs []string
			for k, v := range vars {
				pairs = append(pairs, "{"+k+"}", v)
			}
			rep := strings.NewReplacer(pairs...)
			hdr := make([]string, len(st.header))
			for i, h := range st.header {
				hdr[i] = rep.Replace(h)
			}
			resp, b := s.do(t, st.method, rep.Replace(st.path), rep.Replace(st.body), hdr...)
			if st.code != "" || st.want >= 400 {
				hubCheckError(t, st.method, resp, b, st.want, st.code)
			} else if got := resp.StatusCode; got != st.want {
				t.Fatalf("%s %s: Status=%d, want %d; body %.300s", st.method, st.path, got, st.want, b)
			}
			if st.save != "" {
				etag := resp.Header.Get("ETag")
				if etag == "" {
					t.Fatalf("no ETag header to save as %s", st.save)
				}
				vars[st.save] = etag
			}
			if st.check != nil {
				st.check(t, resp.Header, b, vars)
			}
		})
		if !ok {
			t.FailNow() // later steps depend on this one
		}
	}
	return vars
}

func TestHub_Auth(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.must(t, 201, "POST", "/api/v1/containers/orders/docs", `{"id":"o1","territory":"t1"}`)
	s.must(t, 201, "POST", "/api/v1/edges", `{"name":"laptop-1"}`)
	const doc = `{"id":"o2","territory":"t1"}`
	routes := []struct {
		method, path, body string
	}{
		{"GET", "/api/v1/status", ""},
		{"GET", "/api/v1/containers", ""},
		{"GET", "/api/v1/containers/orders", ""},
		{"PUT", "/api/v1/containers/orders2", `{"partitionKey":"/p"}`},
		{"POST", "/api/v1/containers/orders/docs", doc},
		{"GET", "/api/v1/containers/orders/docs", ""},
		{"GET", "/api/v1/containers/orders/docs/o1", ""},
		{"HEAD", "/api/v1/containers/orders/docs/o1", ""},
		{"PUT", "/api/v1/containers/orders/docs/o2", doc},
		{"DELETE", "/api/v1/containers/orders/docs/o1", ""},
		{"GET", "/api/v1/containers/orders/changes", ""},
		{"GET", "/api/v1/containers/orders/changes?stream=true", ""},
		{"GET", "/api/v1/containers/orders/conflicts", ""},
		{"POST", "/api/v1/edges", `{"name":"laptop-2"}`},
		{"GET", "/api/v1/edges", ""},
		{"DELETE", "/api/v1/edges/laptop-1", ""},
		{"GET", "/api/v1/sync", ""}, // an edge token, not the admin token
	}
	creds := []struct {
		name string
		hdr  []string
	}{
		{name: "no token"},
		{name: "wrong token", hdr: []string{"Authorization", "Bearer wrong"}},
		{name: "token with a suffix", hdr: []string{"Authorization", "Bearer " + hubAdminToken + "x"}},
		{name: "empty bearer", hdr: []string{"Authorization", "Bearer "}},
		{name: "no scheme", hdr: []string{"Authorization", hubAdminToken}},
		{name: "basic scheme", hdr: []string{"Authorization", "Basic " + hubAdminToken}},
	}
	for _, cr := range creds {
		for _, rt := range routes {
			t.Run(cr.name+"/"+rt.method+" "+rt.path, func(t *testing.T) {
				resp, b := s.raw(t, rt.method, rt.path, rt.body, cr.hdr...)
				hubCheckError(t, rt.method, resp, b, http.StatusUnauthorized, "unauthorized")
			})
		}
	}
	// Nothing refused above happened.
	t.Run("nothing changed", func(t *testing.T) {
		s.must(t, 200, "GET", "/api/v1/containers/orders/docs/o1", "")
		s.must(t, 404, "GET", "/api/v1/containers/orders/docs/o2", "")
		s.must(t, 404, "GET", "/api/v1/containers/orders2", "")
		_, b := s.must(t, 200, "GET", "/api/v1/edges", "")
		var l struct {
			Edges []hub.Edge `json:"edges"`
		}
		hubDecode(t, b, &l)
		if len(l.Edges) != 1 || l.Edges[0].Name != "laptop-1" {
			t.Fatalf("edges=%+v, want only laptop-1", l.Edges)
		}
	})

	open := []struct {
		name, path, contentType, contains string
	}{
		{name: "healthz", path: "/healthz", contentType: "application/json", contains: `{"status":"ok"}`},
		{name: "metrics", path: "/metrics", contentType: "text/plain", contains: "edgesync_hub_lsn "},
	}
	for _, tt := range open {
		t.Run(tt.name+" without a token", func(t *testing.T) {
			resp, b := s.raw(t, "GET", tt.path, "")
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("Status=%d, want %d; body %.300s", got, want, b)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.contentType) {
				t.Fatalf("Content-Type=%q, want %s", got, tt.contentType)
			}
			if !strings.Contains(string(b), tt.contains) {
				t.Fatalf("body %.300s lacks %q", b, tt.contains)
			}
		})
	}
}

func TestHub_Containers(t *testing.T) {
	s := newHubServer(t)
	const base = "/api/v1/containers"
	container := func(name, pk, mode, path string) func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
		return func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
			var c replica.Container
			hubDecode(t, b, &c)
			want := replica.Container{Name: name, PartitionKey: pk, ConflictPolicy: replica.ConflictPolicy{Mode: mode, Path: path}}
			if c != want {
				t.Fatalf("container=%+v, want %+v", c, want)
			}
		}
	}
	hubRunSteps(t, s, []hubStep{
		{name: "list empty", method: "GET", path: base, want: 200, check: func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
			if got, want := strings.TrimSpace(string(b)), `{"containers":[]}`; got != want {
				t.Fatalf("body=%s, want %s", got, want)
			}
		}},
		{name: "create", method: "PUT", path: base + "/orders", body: `{"partitionKey":"/territory"}`, want: 201,
			check: container("orders", "/territory", "lww", "/_ts")},
		{name: "same again", method: "PUT", path: base + "/orders", body: `{"partitionKey":"/territory"}`, want: 200,
			check: container("orders", "/territory", "lww", "/_ts")},
		{name: "policy change", method: "PUT", path: base + "/orders", body: `{"partitionKey":"/territory","conflictPolicy":{"mode":"manual"}}`, want: 200,
			check: container("orders", "/territory", "manual", "")},
		{name: "get", method: "GET", path: base + "/orders", want: 200, check: container("orders", "/territory", "manual", "")},
		{name: "partition key change", method: "PUT", path: base + "/orders", body: `{"partitionKey":"/region"}`, want: 409, code: "container_mismatch"},
		{name: "unchanged after partition key change", method: "GET", path: base + "/orders", want: 200,
			check: container("orders", "/territory", "manual", "")},
		{name: "malformed JSON", method: "PUT", path: base + "/x1", body: `{"partitionKey":`, want: 400, code: "bad_request"},
		{name: "empty body", method: "PUT", path: base + "/x1", want: 400, code: "bad_request"},
		{name: "unknown field", method: "PUT", path: base + "/x1", body: `{"partitionKey":"/p","x":1}`, want: 400, code: "bad_request"},
		{name: "missing partition key", method: "PUT", path: base + "/x1", body: `{}`, want: 400, code: "bad_request"},
		{name: "partition key not a path", method: "PUT", path: base + "/x1", body: `{"partitionKey":"p"}`, want: 400, code: "bad_request"},
		{name: "bad name", method: "PUT", path: base + "/.x", body: `{"partitionKey":"/p"}`, want: 400, code: "bad_request"},
		{name: "body name differs", method: "PUT", path: base + "/x1", body: `{"name":"x2","partitionKey":"/p"}`, want: 400, code: "bad_request"},
		{name: "unknown mode", method: "PUT", path: base + "/x1", body: `{"partitionKey":"/p","conflictPolicy":{"mode":"newest"}}`, want: 400, code: "bad_request"},
		{name: "get unknown", method: "GET", path: base + "/x1", want: 404, code: "container_not_found"},
		{name: "list", method: "GET", path: base, want: 200, check: func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
			var l struct {
				Containers []replica.Container `json:"containers"`
			}
			hubDecode(t, b, &l)
			if got, want := len(l.Containers), 1; got != want {
				t.Fatalf("len(containers)=%d, want %d: %s", got, want, b)
			}
		}},
	})
}

// hubDocCheck checks a document as the hub returns it: confirmed, so with
// _lsn and _crts and never _tentative.
func hubDocCheck(id string, fields map[string]any) func(t *testing.T, h http.Header, b []byte, _ map[string]string) {
	return func(t *testing.T, h http.Header, b []byte, _ map[string]string) {
		if got := h.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
			t.Fatalf("Content-Type=%q, want application/json", got)
		}
		m := hubObject(t, b)
		if m["id"] != id {
			t.Fatalf("id=%v, want %q", m["id"], id)
		}
		etag := h.Get("ETag")
		if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
			t.Fatalf("ETag=%q, want a quoted string", etag)
		}
		if m["_etag"] != etag {
			t.Fatalf("_etag=%v, want the ETag header %q", m["_etag"], etag)
		}
		now := float64(time.Now().Unix())
		for _, p := range []string{"_ts", "_crts"} {
			if v, ok := m[p].(float64); !ok || v < now-60 || v > now+60 {
				t.Fatalf("%s=%v, want about %v", p, m[p], now)
			}
		}
		if lsn, ok := m["_lsn"].(float64); !ok || lsn < 1 {
			t.Fatalf("_lsn=%v, want a positive number", m["_lsn"])
		}
		if v, ok := m["_tentative"]; ok {
			t.Fatalf("_tentative=%v at the hub, want it absent", v)
		}
		for k, want := range fields {
			if got := m[k]; got != want {
				t.Fatalf("%s=%v, want %v", k, got, want)
			}
		}
	}
}

func hubNotModified(t *testing.T, h http.Header, b []byte, vars map[string]string) {
	if len(b) != 0 {
		t.Fatalf("304 body=%q, want none", b)
	}
	if got, want := h.Get("ETag"), vars["e1"]; got != want {
		t.Fatalf("ETag=%q, want %q", got, want)
	}
}

func TestHub_Documents(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	const docs = "/api/v1/containers/orders/docs"
	hubRunSteps(t, s, []hubStep{
		{name: "create", method: "POST", path: docs, want: 201, save: "e1",
			body: `{"id":"o1","territory":"t1","n":1,"_ts":1,"_etag":"\"x\"","_lsn":7,"_crts":8,"_tentative":true}`,
			check: func(t *testing.T, h http.Header, b []byte, vars map[string]string) {
				if got, want := h.Get("Location"), docs+"/o1"; got != want {
					t.Fatalf("Location=%q, want %q", got, want)
				}
				hubDocCheck("o1", map[string]any{"territory": "t1", "n": 1.0, "_lsn": 1.0})(t, h, b, vars)
			}},
		{name: "create duplicate id", method: "POST", path: docs, body: `{"id":"o1","territory":"t1"}`, want: 409, code: "conflict"},
		{name: "get", method: "GET", path: docs + "/o1", want: 200, check: func(t *testing.T, h http.Header, b []byte, vars map[string]string) {
			if got, want := h.Get("ETag"), vars["e1"]; got != want {
				t.Fatalf("ETag=%q, want %q", got, want)
			}
			hubDocCheck("o1", map[string]any{"n": 1.0, "_lsn": 1.0})(t, h, b, vars)
		}},
		{name: "get If-None-Match current", method: "GET", path: docs + "/o1", header: []string{"If-None-Match", "{e1}"}, want: 304, check: hubNotModified},
		{name: "get If-None-Match weak", method: "GET", path: docs + "/o1", header: []string{"If-None-Match", "W/{e1}"}, want: 304, check: hubNotModified},
		{name: "get If-None-Match other", method: "GET", path: docs + "/o1", header: []string{"If-None-Match", `"other"`}, want: 200, check: hubDocCheck("o1", nil)},
		{name: "get consistency confirmed", method: "GET", path: docs + "/o1?consistency=confirmed", want: 200, check: hubDocCheck("o1", map[string]any{"n": 1.0})},
		{name: "get consistency other", method: "GET", path: docs + "/o1?consistency=eventual", want: 400, code: "bad_request"},
		{name: "get missing", method: "GET", path: docs + "/nope", want: 404, code: "not_found"},
		{name: "get in unknown container", method: "GET", path: "/api/v1/containers/nope/docs/o1", want: 404, code: "container_not_found"},
		{name: "create in unknown container", method: "POST", path: "/api/v1/containers/nope/docs", body: `{"id":"o1","territory":"t1"}`, want: 404, code: "container_not_found"},
		{name: "create without partition key", method: "POST", path: docs, body: `{"id":"o9"}`, want: 400, code: "bad_request"},

		{name: "upsert new", method: "PUT", path: docs + "/o2", body: `{"id":"o2","territory":"t2","v":1}`, want: 201, save: "e2",
			check: hubDocCheck("o2", map[string]any{"v": 1.0, "_lsn": 2.0})},
		{name: "upsert existing", method: "PUT", path: docs + "/o2", body: `{"id":"o2","territory":"t2","v":2}`, want: 200, save: "e2b",
			check: hubDocCheck("o2", map[string]any{"v": 2.0, "_lsn": 3.0})},
		{name: "upsert If-Match stale", method: "PUT", path: docs + "/o2", body: `{"id":"o2","territory":"t2","v":3}`, header: []string{"If-Match", "{e2}"}, want: 412, code: "precondition_failed"},
		{name: "unchanged after stale If-Match", method: "GET", path: docs + "/o2", want: 200, check: hubDocCheck("o2", map[string]any{"v": 2.0, "_lsn": 3.0})},
		{name: "upsert If-Match current", method: "PUT", path: docs + "/o2", body: `{"id":"o2","territory":"t2","v":3}`, header: []string{"If-Match", "{e2b}"}, want: 200,
			check: hubDocCheck("o2", map[string]any{"v": 3.0})},
		{name: "upsert If-Match on a missing item", method: "PUT", path: docs + "/o3", body: `{"id":"o3","territory":"t3"}`, header: []string{"If-Match", "*"}, want: 412, code: "precondition_failed"},
		{name: "upsert id differs from path", method: "PUT", path: docs + "/o3", body: `{"id":"o4","territory":"t3"}`, want: 400, code: "bad_request"},
		{name: "upsert partition key change", method: "PUT", path: docs + "/o2", body: `{"id":"o2","territory":"t9"}`, want: 400, code: "partition_key_change"},
		{name: "nothing created by failed writes", method: "GET", path: docs + "/o3", want: 404, code: "not_found"},

		{name: "delete If-Match stale", method: "DELETE", path: docs + "/o1", header: []string{"If-Match", `"stale"`}, want: 412, code: "precondition_failed"},
		{name: "delete", method: "DELETE", path: docs + "/o1", header: []string{"If-Match", "{e1}"}, want: 204,
			check: func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
				if len(b) != 0 {
					t.Fatalf("204 body=%q, want none", b)
				}
			}},
		{name: "delete again", method: "DELETE", path: docs + "/o1", want: 404, code: "not_found"},
		{name: "get deleted", method: "GET", path: docs + "/o1", want: 404, code: "not_found"},
		{name: "delete missing", method: "DELETE", path: docs + "/never", want: 404, code: "not_found"},
		{name: "re-create after delete", method: "POST", path: docs, body: `{"id":"o1","territory":"t5"}`, want: 201,
			check: hubDocCheck("o1", map[string]any{"territory": "t5"})},
	})
}

type hubDocPage struct {
	Documents    []map[string]any `json:"documents"`
	Continuation *string          `json:"continuation"`
}

func TestHub_ListDocuments(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	const docs = "/api/v1/containers/orders/docs"
	var all []string
	byPK := map[string][]string{}
	for i := range 13 {
		id := fmt.Sprintf("d%02d", i)
		pk := "t" + strconv.Itoa(i%3)
		s.must(t, 201, "POST", docs, `{"id":"`+id+`","territory":"`+pk+`"}`)
		all = append(all, id)
		byPK[pk] = append(byPK[pk], id)
	}
	s.must(t, 204, "DELETE", docs+"/d04", "")
	all = slices.DeleteFunc(all, func(id string) bool { return id == "d04" })
	byPK["t1"] = slices.DeleteFunc(byPK["t1"], func(id string) bool { return id == "d04" })

	// read pages through a query until the continuation ends.
	read := func(t *testing.T, query string, pageSize int) []string {
		t.Helper()
		var ids []string
		cont := ""
		for range 50 {
			q := query
			if cont != "" {
				q += "&continuation=" + url.QueryEscape(cont)
			}
			_, b := s.must(t, 200, "GET", docs+"?"+q, "")
			var p hubDocPage
			hubDecode(t, b, &p)
			if pageSize > 0 && len(p.Documents) > pageSize {
				t.Fatalf("len(documents)=%d, want at most %d", len(p.Documents), pageSize)
			}
			for _, d := range p.Documents {
				ids = append(ids, d["id"].(string))
				if _, ok := d["_lsn"]; !ok {
					t.Fatalf("document %v has no _lsn", d)
				}
			}
			if p.Continuation == nil {
				return ids
			}
			cont = *p.Continuation
		}
		t.Fatalf("no end of the list after 50 pages")
		return nil
	}
	tests := []struct {
		name     string
		query    string
		pageSize int
		want     []string
	}{
		{name: "all in one page", query: "limit=100", want: all},
		{name: "default limit", query: "", want: all},
		{name: "pages of 5", query: "limit=5", pageSize: 5, want: all},
		{name: "pages of 1", query: "limit=1", pageSize: 1, want: all},
		{name: "one partition", query: "pk=t1", want: byPK["t1"]},
		{name: "one partition in pages of 2", query: "pk=t0&limit=2", pageSize: 2, want: byPK["t0"]},
		{name: "unknown partition", query: "pk=zz", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := read(t, tt.query, tt.pageSize); !slices.Equal(got, tt.want) {
				t.Fatalf("ids=%v, want %v", got, tt.want)
			}
		})
	}
	bad := []struct {
		name, query, code string
		want              int
	}{
		{name: "limit not a number", query: "?limit=x", want: 400, code: "bad_request"},
		{name: "limit over 1000", query: "?limit=1001", want: 400, code: "bad_request"},
		{name: "foreign continuation", query: "?continuation=abc", want: 400, code: "bad_request"},
		{name: "consistency other", query: "?consistency=eventual", want: 400, code: "bad_request"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.do(t, "GET", docs+tt.query, "")
			hubCheckError(t, "GET", resp, b, tt.want, tt.code)
		})
	}
	t.Run("unknown container", func(t *testing.T) {
		resp, b := s.do(t, "GET", "/api/v1/containers/nope/docs", "")
		hubCheckError(t, "GET", resp, b, 404, "container_not_found")
	})
}

type hubChangePage struct {
	Changes      []json.RawMessage `json:"changes"`
	Continuation string            `json:"continuation"`
}

// hubChangeRecord is a change record with the fields docs/api.md, Change feed requires.
type hubChangeRecord struct {
	LSN      *int64          `json:"lsn"`
	CRTS     *int64          `json:"crts"`
	Op       string          `json:"op"`
	ID       string          `json:"id"`
	PK       *string         `json:"pk"`
	Document json.RawMessage `json:"document"`
	Origin   string          `json:"origin"`
}

func hubReadChanges(t *testing.T, s *hubServer, container, query string) ([]hubChangeRecord, string) {
	t.Helper()
	_, b := s.must(t, 200, "GET", "/api/v1/containers/"+container+"/changes"+query, "")
	var p hubChangePage
	hubDecode(t, b, &p)
	out := make([]hubChangeRecord, len(p.Changes))
	for i, raw := range p.Changes {
		hubDecode(t, raw, &out[i])
	}
	return out, p.Continuation
}

func TestHub_Changes(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.putContainer(t, "other", `{"partitionKey":"/territory"}`)
	const docs = "/api/v1/containers/orders/docs"
	s.must(t, 201, "POST", docs, `{"id":"a","territory":"t1","v":1}`)
	s.must(t, 201, "POST", "/api/v1/containers/other/docs", `{"id":"x","territory":"t1"}`)
	s.must(t, 201, "PUT", docs+"/b", `{"id":"b","territory":"t2","v":1}`)
	s.must(t, 200, "PUT", docs+"/a", `{"id":"a","territory":"t1","v":2}`)
	s.must(t, 204, "DELETE", docs+"/b", "")
	// A version pushed by an edge is in the feed with its origin.
	if out := s.push(t, "e1", wire.Version{Container: "orders", ID: "c", Op: "create", Version: "e1-1", TS: 100,
		Body: json.RawMessage(`{"id":"c","territory":"t3","v":1}`)}); out[0].Outcome != wire.OutcomeConfirmed {
		t.Fatalf("push outcome=%+v, want confirmed", out[0])
	}
	s.must(t, 200, "PUT", docs+"/a", `{"id":"a","territory":"t1","v":3}`)
	hubID := s.h.HubID()
	want := []struct{ op, id, pk, origin string }{
		{"create", "a", "t1", hubID}, {"create", "b", "t2", hubID}, {"replace", "a", "t1", hubID},
		{"delete", "b", "t2", hubID}, {"create", "c", "t3", "e1"}, {"replace", "a", "t1", hubID},
	}
	check := func(t *testing.T, got []hubChangeRecord) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("len(changes)=%d, want %d: %+v", len(got), len(want), got)
		}
		for i, c := range got {
			w := want[i]
			if c.Op != w.op || c.ID != w.id || c.PK == nil || *c.PK != w.pk || c.Origin != w.origin {
				t.Fatalf("change %d=%+v, want %s %s pk %s origin %s", i, c, w.op, w.id, w.pk, w.origin)
			}
			if c.LSN == nil || *c.LSN < 1 || i > 0 && *c.LSN <= *got[i-1].LSN {
				t.Fatalf("change %d lsn=%v, want positive and increasing", i, c.LSN)
			}
			if c.CRTS == nil || *c.CRTS < time.Now().Unix()-60 {
				t.Fatalf("change %d crts=%v, want about now", i, c.CRTS)
			}
			if c.Op == replica.OpDelete {
				if c.Document != nil {
					t.Fatalf("delete change %d carries document %s, want it absent", i, c.Document)
				}
				continue
			}
			var doc map[string]any
			hubDecode(t, c.Document, &doc)
			if doc["id"] != c.ID || doc["_lsn"] != float64(*c.LSN) || doc["_crts"] == nil {
				t.Fatalf("change %d document=%s, want id %s, _lsn %d, _crts", i, c.Document, c.ID, *c.LSN)
			}
			if _, ok := doc["_tentative"]; ok {
				t.Fatalf("change %d document=%s has _tentative", i, c.Document)
			}
		}
	}

	t.Run("one page", func(t *testing.T) {
		got, cont := hubReadChanges(t, s, "orders", "?since=0")
		check(t, got)
		if want := strconv.FormatInt(*got[len(got)-1].LSN, 10); cont != want {
			t.Fatalf("continuation=%q, want %q", cont, want)
		}
	})
	t.Run("pages of 2 with continuation", func(t *testing.T) {
		var all []hubChangeRecord
		q := "?limit=2"
		for range 10 {
			got, cont := hubReadChanges(t, s, "orders", q)
			if len(got) == 0 {
				break
			}
			if len(got) > 2 {
				t.Fatalf("len(changes)=%d, want at most 2", len(got))
			}
			all = append(all, got...)
			q = "?limit=2&continuation=" + url.QueryEscape(cont)
		}
		check(t, all)
	})
	t.Run("since resumes after an LSN", func(t *testing.T) {
		got, _ := hubReadChanges(t, s, "orders", "")
		since := *got[2].LSN
		rest, _ := hubReadChanges(t, s, "orders", "?since="+strconv.FormatInt(since, 10))
		var gotOps, wantOps []string
		for _, c := range rest {
			gotOps = append(gotOps, c.Op+":"+c.ID)
		}
		for _, c := range got[3:] {
			wantOps = append(wantOps, c.Op+":"+c.ID)
		}
		if !slices.Equal(gotOps, wantOps) {
			t.Fatalf("changes since %d=%v, want %v", since, gotOps, wantOps)
		}
	})
	t.Run("since past the end", func(t *testing.T) {
		got, cont := hubReadChanges(t, s, "orders", "?since=1000")
		if len(got) != 0 || cont != "1000" {
			t.Fatalf("changes=%v continuation=%q, want none and 1000", got, cont)
		}
	})
	bad := []struct {
		name, path, code string
		want             int
	}{
		{name: "since not a number", path: "/api/v1/containers/orders/changes?since=abc", want: 400, code: "bad_request"},
		{name: "negative since", path: "/api/v1/containers/orders/changes?since=-1", want: 400, code: "bad_request"},
		{name: "limit over 1000", path: "/api/v1/containers/orders/changes?limit=1001", want: 400, code: "bad_request"},
		{name: "unknown container", path: "/api/v1/containers/nope/changes", want: 404, code: "container_not_found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.do(t, "GET", tt.path, "")
			hubCheckError(t, "GET", resp, b, tt.want, tt.code)
		})
	}
}

type hubSSEEvent struct {
	id, event, data string
}

// hubReadEvents parses a Server-Sent Events stream until it ends.
func hubReadEvents(r io.Reader, out chan<- hubSSEEvent) {
	defer close(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev hubSSEEvent
	var data []string
	have := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if have {
				ev.data = strings.Join(data, "\n")
				out <- ev
			}
			ev, data, have = hubSSEEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		have = true
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
}

func hubNextChange(t *testing.T, ch <-chan hubSSEEvent) replica.Change {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("stream ended, want an event")
		}
		if ev.event != "change" {
			t.Fatalf("event=%q (data %s), want change", ev.event, ev.data)
		}
		var c replica.Change
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("event data %q: %v", ev.data, err)
		}
		if got, want := ev.id, strconv.FormatInt(c.LSN, 10); got != want {
			t.Fatalf("event id=%q, want the change's LSN %s", got, want)
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no change event within 5s")
	}
	panic("unreachable")
}

func TestHub_ChangesStream(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.putContainer(t, "other", `{"partitionKey":"/territory"}`)
	const docs = "/api/v1/containers/orders/docs"
	s.must(t, 201, "POST", docs, `{"id":"s1","territory":"t1"}`)

	tests := []struct {
		name    string
		query   func() string
		hdr     []string
		backlog string // the first change's id, "" for none
	}{
		{name: "stream=true from the start", query: func() string { return "?stream=true" }, backlog: "s1"},
		{name: "Accept header from the head", query: func() string { return "?since=" + strconv.FormatInt(s.h.Head(), 10) },
			hdr: []string{"Accept", "text/event-stream"}},
		{name: "Last-Event-ID", query: func() string { return "?stream=true" },
			hdr: []string{"Last-Event-ID", "0"}, backlog: "s1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/containers/orders/changes"+tt.query(), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(hubAuth[0], hubAuth[1])
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			resp, err := s.c.Do(req)
			if err != nil {
				t.Fatalf("GET stream: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("stream Status=%d, want 200; body %s", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/event-stream") {
				t.Fatalf("stream Content-Type=%q, want text/event-stream", got)
			}
			ch := make(chan hubSSEEvent, 16)
			go hubReadEvents(resp.Body, ch)
			defer func() {
				cancel()
				resp.Body.Close()
				for range ch {
				}
			}()
			if tt.backlog != "" {
				if c := hubNextChange(t, ch); c.ID != tt.backlog || c.Op != "create" {
					t.Fatalf("backlog change=%s %s, want create %s", c.Op, c.ID, tt.backlog)
				}
				// Skip the rest of the backlog: earlier runs' writes.
				for range hubCountChanges(t, s, "orders") - 1 {
					hubNextChange(t, ch)
				}
			}
			// Another container's write is not on this stream; a new write
			// in this one arrives live.
			s.must(t, 201, "POST", "/api/v1/containers/other/docs", fmt.Sprintf(`{"id":"x%d","territory":"t1"}`, i))
			id := fmt.Sprintf("live%d", i)
			s.must(t, 201, "POST", docs, `{"id":"`+id+`","territory":"t1"}`)
			c := hubNextChange(t, ch)
			if c.ID != id || c.Op != "create" || c.Origin != s.h.HubID() || c.Document == nil {
				t.Fatalf("live change=%+v, want create %s from the hub with its document", c, id)
			}
			// A version pushed by an edge arrives too.
			pid := fmt.Sprintf("pushed%d", i)
			s.push(t, "e1", wire.Version{Container: "orders", ID: pid, Op: "create", Version: "e1-" + strconv.Itoa(i+1), TS: 1,
				Body: json.RawMessage(`{"id":"` + pid + `","territory":"t1"}`)})
			if c := hubNextChange(t, ch); c.ID != pid || c.Origin != "e1" {
				t.Fatalf("pushed change=%+v, want %s from e1", c, pid)
			}
		})
	}
}

// hubCountChanges counts a container's change records.
func hubCountChanges(t *testing.T, s *hubServer, container string) int {
	t.Helper()
	got, _ := hubReadChanges(t, s, container, "?limit=1000")
	return len(got)
}

type hubConflict struct {
	ID        int64  `json:"id"`
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	DocID     string `json:"docId"`
	Policy    string `json:"policy"`
	Loser     string `json:"loser"`
	WinnerLSN int64  `json:"winnerLsn"`
	Reason    string `json:"reason"`
	Incoming  *struct {
		Version  string         `json:"version"`
		Origin   string         `json:"origin"`
		Document map[string]any `json:"document"`
	} `json:"incoming"`
	Existing *struct {
		Version  string         `json:"version"`
		Origin   string         `json:"origin"`
		Document map[string]any `json:"document"`
	} `json:"existing"`
	Base *struct {
		Version  string         `json:"version"`
		Document map[string]any `json:"document"`
	} `json:"base"`
}

type hubConflictPage struct {
	Conflicts    []hubConflict `json:"conflicts"`
	Continuation string        `json:"continuation"`
}

func TestHub_Conflicts(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.putContainer(t, "held", `{"partitionKey":"/territory","conflictPolicy":{"mode":"manual"}}`)

	// Two edges replace the same hub-written version concurrently: e1
	// first (confirmed), then e2 (a replace conflict).
	type outcome struct {
		first, second wire.Outcome
		base          string
	}
	conflict := func(container string, ts2 int64) outcome {
		s.must(t, 201, "POST", "/api/v1/containers/"+container+"/docs", `{"id":"o1","territory":"t1","v":0}`)
		base := s.version(t, container, "o1")
		out1 := s.push(t, "e1", wire.Version{Container: container, ID: "o1", Op: "replace", Version: pushedVersion("e1", container), Base: base, TS: 100,
			Body: json.RawMessage(`{"id":"o1","territory":"t1","v":1}`)})
		out2 := s.push(t, "e2", wire.Version{Container: container, ID: "o1", Op: "replace", Version: pushedVersion("e2", container), Base: base, TS: ts2,
			Body: json.RawMessage(`{"id":"o1","territory":"t1","v":2}`)})
		return outcome{out1[0], out2[0], base}
	}
	lww := conflict("orders", 200) // later _ts: the incoming version wins
	if lww.first.Outcome != wire.OutcomeConfirmed || lww.second.Outcome != wire.OutcomeConfirmed || lww.second.ConflictID == 0 {
		t.Fatalf("lww outcomes=%+v, %+v; want confirmed, then confirmed with a conflict", lww.first, lww.second)
	}
	manual := conflict("held", 200)
	if manual.first.Outcome != wire.OutcomeConfirmed || manual.second.Outcome != wire.OutcomeLost || manual.second.ConflictID == 0 {
		t.Fatalf("manual outcomes=%+v, %+v; want confirmed, then lost with a conflict", manual.first, manual.second)
	}

	read := func(t *testing.T, container, query string) []hubConflict {
		t.Helper()
		_, b := s.must(t, 200, "GET", "/api/v1/containers/"+container+"/conflicts"+query, "")
		var p hubConflictPage
		hubDecode(t, b, &p)
		if p.Conflicts == nil {
			t.Fatalf("conflicts=%s, want a list", b)
		}
		return p.Conflicts
	}
	tests := []struct {
		name      string
		container string
		query     string
		want      int
		status    string
		loser     string
		policy    string
		winner    func() int64
		keptV     float64 // the body's v the item has now
	}{
		{name: "lww all", container: "orders", want: 1, status: "resolved", loser: "existing", policy: "lww",
			winner: func() int64 { return lww.second.LSN }, keptV: 2},
		{name: "lww resolved", container: "orders", query: "?status=resolved", want: 1, status: "resolved", loser: "existing", policy: "lww",
			winner: func() int64 { return lww.second.LSN }, keptV: 2},
		{name: "lww unresolved is empty", container: "orders", query: "?status=unresolved", want: 0},
		{name: "manual unresolved", container: "held", query: "?status=unresolved", want: 1, status: "unresolved", loser: "incoming", policy: "manual",
			winner: func() int64 { return manual.first.LSN }, keptV: 1},
		{name: "manual resolved is empty", container: "held", query: "?status=resolved", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := read(t, tt.container, tt.query)
			if len(got) != tt.want {
				t.Fatalf("len(conflicts)=%d, want %d: %+v", len(got), tt.want, got)
			}
			if tt.want == 0 {
				return
			}
			c := got[0]
			if c.Kind != replica.KindReplace || c.Status != tt.status || c.Policy != tt.policy || c.Loser != tt.loser || c.DocID != "o1" {
				t.Fatalf("conflict=%+v, want kind replace, status %s, policy %s, loser %s, docId o1", c, tt.status, tt.policy, tt.loser)
			}
			if got, want := c.WinnerLSN, tt.winner(); got != want {
				t.Fatalf("winnerLsn=%d, want %d", got, want)
			}
			if c.Incoming == nil || c.Incoming.Version != pushedVersion("e2", tt.container) || c.Incoming.Origin != "e2" || c.Incoming.Document["v"] != 2.0 {
				t.Fatalf("incoming=%+v, want e2's version with v 2", c.Incoming)
			}
			if c.Existing == nil || c.Existing.Version != pushedVersion("e1", tt.container) || c.Existing.Origin != "e1" || c.Existing.Document["v"] != 1.0 {
				t.Fatalf("existing=%+v, want e1's version with v 1", c.Existing)
			}
			if c.Base == nil || c.Base.Document["v"] != 0.0 {
				t.Fatalf("base=%+v, want the hub's version with v 0", c.Base)
			}
			if c.Reason == "" {
				t.Fatalf("conflict has no reason")
			}
			_, b := s.must(t, 200, "GET", "/api/v1/containers/"+tt.container+"/docs/o1", "")
			if got := hubObject(t, b)["v"]; got != tt.keptV {
				t.Fatalf("item v=%v, want %v", got, tt.keptV)
			}
		})
	}
	t.Run("conflict id matches the outcome", func(t *testing.T) {
		if got := read(t, "orders", ""); got[0].ID != lww.second.ConflictID {
			t.Fatalf("id=%d, want the outcome's conflictId %d", got[0].ID, lww.second.ConflictID)
		}
	})
	t.Run("continuation after the last", func(t *testing.T) {
		if got := read(t, "orders", "?continuation="+strconv.FormatInt(lww.second.ConflictID, 10)); len(got) != 0 {
			t.Fatalf("conflicts after the last=%+v, want none", got)
		}
	})
	bad := []struct {
		name, path, code string
		want             int
	}{
		{name: "bogus status", path: "/api/v1/containers/orders/conflicts?status=bogus", want: 400, code: "bad_request"},
		{name: "bad continuation", path: "/api/v1/containers/orders/conflicts?continuation=x", want: 400, code: "bad_request"},
		{name: "bad limit", path: "/api/v1/containers/orders/conflicts?limit=-1", want: 400, code: "bad_request"},
		{name: "unknown container", path: "/api/v1/containers/nope/conflicts", want: 404, code: "container_not_found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := s.do(t, "GET", tt.path, "")
			hubCheckError(t, "GET", resp, b, tt.want, tt.code)
		})
	}
}

func TestHub_Edges(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.must(t, 201, "POST", "/api/v1/containers/orders/docs", `{"id":"o1","territory":"t7"}`)
	tokens := map[string]string{}
	saveToken := func(name string) func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
		return func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
			m := hubObject(t, b)
			token, _ := m["token"].(string)
			if m["name"] != name || len(token) < 16 {
				t.Fatalf("register=%s, want name %s and a token", b, name)
			}
			tokens[name] = token
		}
	}
	type edgeList struct {
		Edges []map[string]any `json:"edges"`
	}
	listCheck := func(want ...string) func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
		return func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
			for name, token := range tokens {
				if strings.Contains(string(b), token) {
					t.Fatalf("GET /edges shows %s's token: %s", name, b)
				}
			}
			var l edgeList
			hubDecode(t, b, &l)
			var names []string
			for _, e := range l.Edges {
				names = append(names, e["name"].(string))
				if _, ok := e["token"]; ok {
					t.Fatalf("edge %v has a token field", e)
				}
				for _, k := range []string{"scope", "online", "lag"} {
					if _, ok := e[k]; !ok {
						t.Fatalf("edge %v has no %q", e, k)
					}
				}
				if e["online"] != false {
					t.Fatalf("edge %v is online, want offline (no session)", e)
				}
				if got, want := e["lag"], float64(s.h.Head()); got != want {
					t.Fatalf("edge %v lag=%v, want %v (never synced)", e["name"], got, want)
				}
			}
			if !slices.Equal(names, want) {
				t.Fatalf("edges=%v, want %v", names, want)
			}
		}
	}
	hubRunSteps(t, s, []hubStep{
		{name: "list empty", method: "GET", path: "/api/v1/edges", want: 200, check: listCheck()},
		{name: "register with scope", method: "POST", path: "/api/v1/edges", want: 201,
			body:  `{"name":"laptop-7","scope":[{"container":"orders","partitionKeys":["t7"]}]}`,
			check: saveToken("laptop-7")},
		{name: "register without scope", method: "POST", path: "/api/v1/edges", body: `{"name":"kiosk"}`, want: 201, check: saveToken("kiosk")},
		{name: "duplicate name", method: "POST", path: "/api/v1/edges", body: `{"name":"laptop-7"}`, want: 409, code: "conflict"},
		{name: "empty name", method: "POST", path: "/api/v1/edges", body: `{"name":""}`, want: 400, code: "bad_request"},
		{name: "bad name", method: "POST", path: "/api/v1/edges", body: `{"name":"my laptop"}`, want: 400, code: "bad_request"},
		{name: "bad scope container", method: "POST", path: "/api/v1/edges", body: `{"name":"e3","scope":[{"container":"a/b"}]}`, want: 400, code: "bad_request"},
		{name: "empty scope container", method: "POST", path: "/api/v1/edges", body: `{"name":"e3","scope":[{"partitionKeys":["x"]}]}`, want: 400, code: "bad_request"},
		{name: "scope not a list", method: "POST", path: "/api/v1/edges", body: `{"name":"e3","scope":"orders"}`, want: 400, code: "bad_request"},
		{name: "unknown field", method: "POST", path: "/api/v1/edges", body: `{"name":"e3","token":"mine"}`, want: 400, code: "bad_request"},
		{name: "empty body", method: "POST", path: "/api/v1/edges", want: 400, code: "bad_request"},
		{name: "list", method: "GET", path: "/api/v1/edges", want: 200, check: func(t *testing.T, h http.Header, b []byte, vars map[string]string) {
			listCheck("kiosk", "laptop-7")(t, h, b, vars)
			var l struct {
				Edges []hub.Edge `json:"edges"`
			}
			hubDecode(t, b, &l)
			want := [][]wire.ScopeEntry{{}, {{Container: "orders", PartitionKeys: []string{"t7"}}}}
			for i, e := range l.Edges {
				if !slices.EqualFunc(e.Scope, want[i], func(a, b wire.ScopeEntry) bool {
					return a.Container == b.Container && slices.Equal(a.PartitionKeys, b.PartitionKeys)
				}) {
					t.Fatalf("edge %s scope=%+v, want %+v", e.Name, e.Scope, want[i])
				}
			}
		}},
	})
	t.Run("edge token is not the admin token", func(t *testing.T) {
		resp, b := s.raw(t, "GET", "/api/v1/status", "", "Authorization", "Bearer "+tokens["laptop-7"])
		hubCheckError(t, "GET", resp, b, 401, "unauthorized")
	})
	t.Run("token authenticates its edge", func(t *testing.T) {
		e, err := s.h.Authenticate(context.Background(), tokens["laptop-7"])
		if err != nil || e.Name != "laptop-7" {
			t.Fatalf("Authenticate=%+v, %v; want laptop-7", e, err)
		}
	})
	hubRunSteps(t, s, []hubStep{
		{name: "revoke", method: "DELETE", path: "/api/v1/edges/laptop-7", want: 204},
		{name: "revoke again", method: "DELETE", path: "/api/v1/edges/laptop-7", want: 404, code: "not_found"},
		{name: "revoke unknown", method: "DELETE", path: "/api/v1/edges/never", want: 404, code: "not_found"},
		{name: "list after revoke", method: "GET", path: "/api/v1/edges", want: 200, check: listCheck("kiosk")},
		{name: "name free again", method: "POST", path: "/api/v1/edges", body: `{"name":"laptop-7"}`, want: 201,
			check: func(t *testing.T, _ http.Header, b []byte, _ map[string]string) {
				if token, _ := hubObject(t, b)["token"].(string); token == tokens["laptop-7"] {
					t.Fatalf("re-registration gave the revoked token again")
				}
			}},
	})
	t.Run("revoked token refused at sync", func(t *testing.T) {
		resp, b := s.raw(t, "GET", "/api/v1/sync", "", "Authorization", "Bearer "+tokens["laptop-7"])
		hubCheckError(t, "GET", resp, b, 401, "unauthorized")
	})
}

func TestHub_Status(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	s.must(t, 201, "POST", "/api/v1/containers/orders/docs", `{"id":"a","territory":"t1"}`)
	s.must(t, 200, "PUT", "/api/v1/containers/orders/docs/a", `{"id":"a","territory":"t1","v":2}`)
	s.must(t, 204, "DELETE", "/api/v1/containers/orders/docs/a", "")
	s.must(t, 409, "PUT", "/api/v1/containers/orders", `{"partitionKey":"/x"}`) // refused: no write

	_, b := s.must(t, http.StatusOK, http.MethodGet, "/api/v1/status", "")
	m := hubObject(t, b)
	tests := []struct {
		name string
		key  string
		want any
	}{
		{name: "hub id", key: "hubId", want: s.h.HubID()},
		{name: "lsn counts every write", key: "lsn", want: 3.0},
		{name: "no edge online", key: "edgesOnline", want: 0.0},
		{name: "containers", key: "containers", want: 1.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := m[tt.key]
			if !ok {
				t.Fatalf("status %s has no %q", b, tt.key)
			}
			if got != tt.want {
				t.Fatalf("%s=%v, want %v", tt.key, got, tt.want)
			}
		})
	}
	if id, _ := m["hubId"].(string); id == "" {
		t.Fatalf("hubId is empty")
	}
}
