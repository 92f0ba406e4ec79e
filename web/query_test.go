package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/web"
)

type queryPage struct {
	Documents    []json.RawMessage `json:"documents"`
	Continuation *string           `json:"continuation"`
}

// runQuery posts a query body to send and decodes the page.
func runQuery(t *testing.T, send func(body string) (int, []byte), body string) queryPage {
	t.Helper()
	status, b := send(body)
	if status != http.StatusOK {
		t.Fatalf("query %s: Status=%d, want 200; body %.300s", body, status, b)
	}
	var p queryPage
	decode(t, b, &p)
	return p
}

// queryAll follows continuations and returns every document and the number
// of pages.
func queryAll(t *testing.T, send func(body string) (int, []byte), req map[string]any) ([]string, int) {
	t.Helper()
	var all []string
	for n := 1; n <= 100; n++ {
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		p := runQuery(t, send, string(b))
		for _, d := range p.Documents {
			all = append(all, string(d))
		}
		if p.Continuation == nil {
			return all, n
		}
		req["continuation"] = *p.Continuation
	}
	t.Fatal("more than 100 pages")
	return nil, 0
}

func wantError(t *testing.T, status int, b []byte, wantStatus int, code, msg string) {
	t.Helper()
	var e web.Error
	decode(t, b, &e)
	if status != wantStatus || e.Code != code || !strings.Contains(e.Message, msg) {
		t.Errorf("Status=%d %s, want %d %q with %q", status, b, wantStatus, code, msg)
	}
}

func TestEdge_Query(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.putContainer(t, "products", "/category")
	for _, d := range []string{
		`{"id":"p1","category":"tools","price":10}`,
		`{"id":"p2","category":"tools","price":20}`,
		`{"id":"p3","category":"office","price":5}`,
	} {
		s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/products/docs", d)
	}
	// p4 comes confirmed from the hub.
	conf := wire.Change{LSN: 1, CRTS: 100, Container: "products", Op: replica.OpCreate, ID: "p4", PK: "office",
		Version: "hubnode-1", Origin: "hubnode", TS: 100, Body: []byte(`{"id":"p4","category":"office","price":1}`)}
	if err := s.r.ApplyConfirmed(ctx, nil, []wire.Change{conf}, 1); err != nil {
		t.Fatal(err)
	}
	send := func(body string) (int, []byte) {
		resp, b := s.do(t, http.MethodPost, "/api/v1/containers/products/query", body)
		return resp.StatusCode, b
	}

	t.Run("tentative versions are marked", func(t *testing.T) {
		p := runQuery(t, send, `{"query":"SELECT c.id, c._tentative, IS_DEFINED(c._lsn) AS confirmed FROM c"}`)
		got, _ := json.Marshal(p.Documents)
		want := `[{"id":"p1","_tentative":true,"confirmed":false},{"id":"p2","_tentative":true,"confirmed":false},{"id":"p3","_tentative":true,"confirmed":false},{"id":"p4","confirmed":true}]`
		if string(got) != want {
			t.Errorf("documents %s, want %s", got, want)
		}
		if p.Continuation != nil {
			t.Errorf("continuation %q on the only page", *p.Continuation)
		}
	})
	t.Run("confirmed consistency", func(t *testing.T) {
		p := runQuery(t, send, `{"query":"SELECT * FROM c","consistency":"confirmed"}`)
		if len(p.Documents) != 1 || !strings.Contains(string(p.Documents[0]), `"id":"p4"`) || strings.Contains(string(p.Documents[0]), "_tentative") {
			t.Errorf("confirmed documents %s, want p4 alone, unmarked", p.Documents)
		}
	})
	t.Run("parameters", func(t *testing.T) {
		p := runQuery(t, send, `{"query":"SELECT VALUE c.id FROM c WHERE c.price > @min AND c.category = @cat ORDER BY c.price DESC","parameters":[{"name":"@min","value":8},{"name":"@cat","value":"tools"}]}`)
		if got, _ := json.Marshal(p.Documents); string(got) != `["p2","p1"]` {
			t.Errorf("documents %s, want [\"p2\",\"p1\"]", got)
		}
	})
	t.Run("paging", func(t *testing.T) {
		got, pages := queryAll(t, send, map[string]any{"query": "SELECT VALUE c.id FROM c ORDER BY c.price", "limit": 1})
		if strings.Join(got, ",") != `"p4","p3","p1","p2"` || pages != 4 {
			t.Errorf("pages of 1: %v in %d pages, want p4, p3, p1, p2 in 4", got, pages)
		}
	})
	t.Run("bad query has its column", func(t *testing.T) {
		status, b := send(`{"query":"SELECT * FROM c WHERE c.price >"}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_query", "expected an expression, found end of query at column 32")
	})
	t.Run("missing parameter", func(t *testing.T) {
		status, b := send(`{"query":"SELECT * FROM c WHERE c.price > @min"}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_query", "parameter @min is not given at column 33")
	})
	t.Run("continuation of another query", func(t *testing.T) {
		p := runQuery(t, send, `{"query":"SELECT VALUE c.id FROM c","limit":1}`)
		if p.Continuation == nil {
			t.Fatal("no continuation")
		}
		status, b := send(`{"query":"SELECT VALUE c.price FROM c","limit":1,"continuation":"` + *p.Continuation + `"}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_query", "another query")
	})
	t.Run("bad requests", func(t *testing.T) {
		status, b := send(`{"query":"SELECT * FROM c","consistency":"strong"}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_request", "consistency")
		status, b = send(`{"query":"SELECT * FROM c","limit":5000}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_query", "limit 5000")
		status, b = send(`{"query":"SELECT * FROM c","order":"x"}`)
		wantError(t, status, b, http.StatusBadRequest, "bad_request", "order")
		resp, b := s.do(t, http.MethodPost, "/api/v1/containers/nothere/query", `{"query":"SELECT * FROM c"}`)
		wantError(t, resp.StatusCode, b, http.StatusNotFound, "container_not_found", "nothere")
	})
	t.Run("scope", func(t *testing.T) {
		// Once the node learns its scope, items outside it (local writes
		// the hub will refuse) are left out.
		err := s.r.Welcome(ctx, &wire.Frame{HubID: "hub-1", Scope: []wire.ScopeEntry{{Container: "products", PartitionKeys: []string{"tools"}}}})
		if err != nil {
			t.Fatal(err)
		}
		p := runQuery(t, send, `{"query":"SELECT VALUE c.id FROM c"}`)
		if got, _ := json.Marshal(p.Documents); string(got) != `["p1","p2"]` {
			t.Errorf("documents in scope %s, want [\"p1\",\"p2\"]", got)
		}
	})
}

func TestEdge_QueryTimeout(t *testing.T) {
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(ctx) })
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "c", []byte(`{"id":"a","pk":"x"}`)); err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(t, web.NewEdge(r, web.EdgeOptions{Query: query.Options{Timeout: time.Nanosecond}}))
	s := &server{url: srv.URL, r: r, c: srv.Client()}
	resp, b := s.do(t, http.MethodPost, "/api/v1/containers/c/query", `{"query":"SELECT * FROM c"}`)
	wantError(t, resp.StatusCode, b, http.StatusRequestTimeout, "query_timeout", "stopped after 1ns")
}

func TestHub_Query(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "orders", `{"partitionKey":"/territory"}`)
	for _, d := range []string{
		`{"id":"o1","territory":"t7","total":30,"lines":[{"sku":"a"},{"sku":"b"}]}`,
		`{"id":"o2","territory":"t7","total":12}`,
		`{"id":"o3","territory":"t8","total":99,"lines":[{"sku":"a"}]}`,
		`{"id":"o4","territory":"t7","total":"n/a"}`,
	} {
		s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/orders/docs", d)
	}
	s.must(t, http.StatusNoContent, http.MethodDelete, "/api/v1/containers/orders/docs/o2", "")
	send := func(body string) (int, []byte) {
		resp, b := s.do(t, http.MethodPost, "/api/v1/containers/orders/query", body)
		return resp.StatusCode, b
	}

	p := runQuery(t, send, `{"query":"SELECT c.id, c._lsn > 0 AS confirmed, IS_DEFINED(c._tentative) AS tentative FROM c WHERE c.territory = @t ORDER BY c.total DESC","parameters":[{"name":"@t","value":"t7"}]}`)
	if got, _ := json.Marshal(p.Documents); string(got) != `[{"id":"o4","confirmed":true,"tentative":false},{"id":"o1","confirmed":true,"tentative":false}]` {
		t.Errorf("documents %s: want o4 (a string sorts after numbers) then o1, confirmed; o2 is deleted", got)
	}
	p = runQuery(t, send, `{"query":"SELECT l.sku, COUNT(1) AS n FROM c JOIN l IN c.lines GROUP BY l.sku"}`)
	if got, _ := json.Marshal(p.Documents); string(got) != `[{"sku":"a","n":2},{"sku":"b","n":1}]` {
		t.Errorf("grouped %s", got)
	}
	got, pages := queryAll(t, send, map[string]any{"query": "SELECT VALUE c.id FROM c", "limit": 2})
	if strings.Join(got, ",") != `"o1","o3","o4"` || pages != 2 {
		t.Errorf("pages of 2: %v in %d pages, want o1, o3, o4 in 2", got, pages)
	}
	status, b := send(`{"query":"SELECT VALUE c.id FROM c WHERE STARTSWITH(c.id)"}`)
	wantError(t, status, b, http.StatusBadRequest, "bad_query", "STARTSWITH takes 2 to 3 arguments, got 1 at column 32")
	status, b = send(`{"query":"SELECT * FROM c","consistency":"local"}`)
	wantError(t, status, b, http.StatusBadRequest, "bad_request", "consistency")
	resp, b := s.raw(t, http.MethodPost, "/api/v1/containers/orders/query", `{"query":"SELECT * FROM c"}`, "Content-Type", "application/json")
	wantError(t, resp.StatusCode, b, http.StatusUnauthorized, "unauthorized", "")
}
