package cosmos_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/web/cosmos"
)

// testKey is the master key of the tests' endpoints.
var testKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{42}, 64))

// node is a Cosmos endpoint over a real edge replica, on loopback.
type node struct {
	t       testing.TB
	url     string
	key     cosmos.Key
	r       *edge.Replica
	handler http.Handler
}

func newNode(t testing.TB) *node {
	t.Helper()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	k, err := cosmos.ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	h := cosmos.New(cosmos.Config{Engine: cosmos.EdgeEngine{R: r}, Key: k})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	n := &node{t: t, url: srv.URL, key: k, r: r, handler: h}
	n.ok(n.do("POST", "/dbs", "dbs", "", `{"id":"shop"}`, nil), http.StatusCreated)
	n.ok(n.do("POST", "/dbs/shop/colls", "colls", "dbs/shop", `{"id":"products","partitionKey":{"paths":["/region"],"kind":"Hash"}}`, nil), http.StatusCreated)
	return n
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request signed as the SDKs sign it (typ and link as they
// compute them), with headers h.
func (n *node) do(method, path, typ, link, body string, h map[string]string) response {
	n.t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	req.Header.Set("x-ms-date", date)
	req.Header.Set("Authorization", n.key.Authorization(method, typ, link, date))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (n *node) ok(r response, want int) response {
	n.t.Helper()
	if r.status != want {
		n.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

const (
	docs     = "/dbs/shop/colls/products/docs"
	collLink = "dbs/shop/colls/products"
)

func pkHeader(v string) map[string]string {
	b, _ := json.Marshal([]string{v})
	return map[string]string{"x-ms-documentdb-partitionkey": string(b)}
}

func TestServer_Unauthorized(t *testing.T) {
	n := newNode(t)
	for _, tt := range []struct {
		name string
		h    map[string]string
	}{
		{"unsigned", map[string]string{"Authorization": ""}},
		{"signed for another link", map[string]string{"Authorization": n.key.Authorization("GET", "dbs", "dbs/other", time.Now().UTC().Format(http.TimeFormat))}},
		{"an old date", map[string]string{"x-ms-date": time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}},
	} {
		r := n.do("GET", "/dbs", "dbs", "", "", tt.h)
		var e struct{ Code, Message string }
		if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusUnauthorized || e.Code != "Unauthorized" || e.Message == "" {
			t.Errorf("%s: %d %s, want 401 {\"code\":\"Unauthorized\",\"message\":...}", tt.name, r.status, r.body)
		}
	}
	n.ok(n.do("GET", "/dbs", "dbs", "", "", nil), http.StatusOK)
}

func TestServer_Items(t *testing.T) {
	n := newNode(t)
	made := n.ok(n.do("POST", docs, "docs", collLink, `{"id":"a b","region":"east","price":1}`, pkHeader("east")), http.StatusCreated)
	etag := made.header.Get("etag")
	n.ok(n.do("POST", docs, "docs", collLink, `{"id":"a b","region":"east"}`, pkHeader("east")), http.StatusConflict)
	n.ok(n.do("POST", docs, "docs", collLink, `{"id":"c","region":"east"}`, pkHeader("west")), http.StatusBadRequest)

	item := docs + "/" + url.PathEscape("a b")
	link := collLink + "/docs/a b"
	n.ok(n.do("GET", item, "docs", link, "", pkHeader("east")), http.StatusOK)
	n.ok(n.do("GET", item, "docs", link, "", pkHeader("west")), http.StatusNotFound)

	// A document read back and written again keeps one _rid, _self and
	// _attachments: the ones it had are dropped, not stored.
	var read map[string]any
	json.Unmarshal(n.ok(n.do("GET", item, "docs", link, "", pkHeader("east")), http.StatusOK).body, &read)
	read["price"] = 2
	body, _ := json.Marshal(read)
	rep := n.ok(n.do("PUT", item, "docs", link, string(body), map[string]string{"If-Match": etag}), http.StatusOK)
	if c := bytes.Count(rep.body, []byte(`"_rid"`)); c != 1 {
		t.Fatalf("replaced item has %d _rid: %s", c, rep.body)
	}
	n.ok(n.do("PUT", item, "docs", link, string(body), map[string]string{"If-Match": etag}), http.StatusPreconditionFailed)
	n.ok(n.do("PUT", docs+"/nope", "docs", collLink+"/docs/nope", `{"id":"nope","region":"east"}`, nil), http.StatusNotFound)

	n.ok(n.do("DELETE", item, "docs", link, "", map[string]string{"If-Match": etag}), http.StatusPreconditionFailed)
	n.ok(n.do("DELETE", item, "docs", link, "", nil), http.StatusNoContent)
	n.ok(n.do("GET", item, "docs", link, "", nil), http.StatusNotFound)

	big := `{"id":"big","region":"east","pad":"` + strings.Repeat("x", 3<<20) + `"}`
	n.ok(n.do("POST", docs, "docs", collLink, big, nil), http.StatusRequestEntityTooLarge)
	n.ok(n.do("GET", "/dbs/shop/users", "users", "dbs/shop", "", nil), http.StatusBadRequest)
}

// Deleting a container deletes its items, more than one transaction's
// worth, as tentative deletes; the container stays and takes new items.
// Deleting its database does the same to each container.
func TestServer_DeleteContainer(t *testing.T) {
	n := newNode(t)
	ctx := context.Background()
	const items = 2500
	for i := range items {
		if _, err := n.r.Create(ctx, "shop.products", fmt.Appendf(nil, `{"id":"i%04d","region":"r%d"}`, i, i%7)); err != nil {
			t.Fatal(err)
		}
	}
	before := n.r.Pending()
	n.ok(n.do("DELETE", "/dbs/shop/colls/products", "colls", collLink, "", nil), http.StatusNoContent)
	p, err := n.r.List(ctx, "shop.products", edge.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 0 {
		t.Fatalf("%d items after the container was deleted, want 0", len(p.Items))
	}
	if got, want := n.r.Pending(), before+items; got != want {
		t.Fatalf("Pending() = %d, want %d: each item deleted by a tentative delete", got, want)
	}
	n.ok(n.do("GET", "/dbs/shop/colls/products", "colls", collLink, "", nil), http.StatusOK)
	n.ok(n.do("POST", docs, "docs", collLink, `{"id":"again","region":"east"}`, pkHeader("east")), http.StatusCreated)

	n.ok(n.do("DELETE", "/dbs/shop", "dbs", "dbs/shop", "", nil), http.StatusNoContent)
	n.ok(n.do("GET", docs+"/again", "docs", collLink+"/docs/again", "", pkHeader("east")), http.StatusNotFound)
	n.ok(n.do("DELETE", "/dbs/nothing", "dbs", "dbs/nothing", "", nil), http.StatusNotFound)
}

// A query with a partition key reads that partition only (Cosmos DB's
// partition-scoped query); without one, the whole container.
func TestServer_QueryPartitionKey(t *testing.T) {
	n := newNode(t)
	for _, d := range []string{`{"id":"1","region":"east"}`, `{"id":"2","region":"west"}`, `{"id":"3","region":"east"}`} {
		n.ok(n.do("POST", docs, "docs", collLink, d, nil), http.StatusCreated)
	}
	query := func(h map[string]string) []string {
		h["x-ms-documentdb-isquery"] = "True"
		h["Content-Type"] = "application/query+json"
		r := n.ok(n.do("POST", docs, "docs", collLink, `{"query":"SELECT VALUE c.id FROM c ORDER BY c.id","parameters":[]}`, h), http.StatusOK)
		var page struct{ Documents []string }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Documents
	}
	if got := strings.Join(query(pkHeader("east")), ","); got != "1,3" {
		t.Fatalf("query in partition east = %s, want 1,3", got)
	}
	if got := strings.Join(query(map[string]string{}), ","); got != "1,2,3" {
		t.Fatalf("query of the container = %s, want 1,2,3", got)
	}
}

func TestServer_ChangeFeedFromNow(t *testing.T) {
	n := newNode(t)
	n.ok(n.do("POST", docs, "docs", collLink, `{"id":"old","region":"east"}`, nil), http.StatusCreated)
	feed := func(inm string) response {
		return n.do("GET", docs, "docs", collLink, "", map[string]string{"A-IM": "Incremental Feed", "If-None-Match": inm})
	}
	now := n.ok(feed("*"), http.StatusNotModified)
	n.ok(n.do("POST", docs, "docs", collLink, `{"id":"new","region":"east"}`, nil), http.StatusCreated)
	r := n.ok(feed(now.header.Get("etag")), http.StatusOK)
	var page struct {
		Documents []struct{ ID string }
	}
	json.Unmarshal(r.body, &page)
	if len(page.Documents) != 1 || page.Documents[0].ID != "new" {
		t.Fatalf("feed from now: %s, want only new", r.body)
	}
	n.ok(feed(r.header.Get("etag")), http.StatusNotModified)
}

// Of concurrent creates of one container id, one is 201 and the others 409,
// and the definition is the one created (none is written over it).
func TestServer_ConcurrentContainerCreates(t *testing.T) {
	n := newNode(t)
	const creates = 8
	statuses := make(chan int, creates)
	bodies := make(chan string, creates)
	for i := range creates {
		go func() {
			body := fmt.Sprintf(`{"id":"race","partitionKey":{"paths":["/region"]},"conflictResolutionPolicy":{"mode":"LastWriterWins","conflictResolutionPath":"/v%d"}}`, i)
			r := n.do("POST", "/dbs/shop/colls", "colls", "dbs/shop", body, nil)
			statuses <- r.status
			if r.status == http.StatusCreated {
				bodies <- string(r.body)
			}
		}()
	}
	created := 0
	for range creates {
		switch s := <-statuses; s {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
		default:
			t.Fatalf("status %d, want 201 or 409", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates answered 201, want 1", created)
	}
	var made, now struct {
		ConflictResolutionPolicy struct{ ConflictResolutionPath string }
	}
	json.Unmarshal([]byte(<-bodies), &made)
	json.Unmarshal(n.ok(n.do("GET", "/dbs/shop/colls/race", "colls", "dbs/shop/colls/race", "", nil), http.StatusOK).body, &now)
	if now != made {
		t.Fatalf("container has %+v, want the created %+v", now, made)
	}
}

// A write with "Prefer: return=minimal", which azcosmos sends unless the app
// asks for the content, is answered with the status and headers only, as
// Cosmos DB answers it; without it, and on reads, with the item.
func TestServer_PreferMinimal(t *testing.T) {
	n := newNode(t)
	minimal := func(h map[string]string) map[string]string {
		h["Prefer"] = "return=minimal"
		return h
	}
	link := collLink + "/docs/a"
	for _, tt := range []struct {
		name, method, path, body string
		h                        map[string]string
		status                   int
	}{
		{"create", "POST", docs, `{"id":"a","region":"east","n":1}`, pkHeader("east"), http.StatusCreated},
		{"replace", "PUT", docs + "/a", `{"id":"a","region":"east","n":2}`, pkHeader("east"), http.StatusOK},
		{"upsert", "POST", docs, `{"id":"a","region":"east","n":3}`, map[string]string{"x-ms-documentdb-partitionkey": `["east"]`, "x-ms-documentdb-is-upsert": "true"}, http.StatusOK},
		{"patch", "PATCH", docs + "/a", `{"operations":[{"op":"incr","path":"/n","value":1}]}`, pkHeader("east"), http.StatusOK},
	} {
		lk := collLink
		if tt.method != "POST" {
			lk = link
		}
		r := n.ok(n.do(tt.method, tt.path, "docs", lk, tt.body, minimal(tt.h)), tt.status)
		if len(r.body) != 0 || r.header.Get("etag") == "" {
			t.Errorf("%s with return=minimal: body %q, etag %q; want no body and an etag", tt.name, r.body, r.header.Get("etag"))
		}
	}
	got := n.ok(n.do("GET", docs+"/a", "docs", link, "", minimal(pkHeader("east"))), http.StatusOK)
	var item struct{ N int }
	if err := json.Unmarshal(got.body, &item); err != nil || item.N != 4 {
		t.Fatalf("read with return=minimal: %s, %v; want the item with n 4", got.body, err)
	}
	full := n.ok(n.do("PUT", docs+"/a", "docs", link, `{"id":"a","region":"east","n":5}`, pkHeader("east")), http.StatusOK)
	if !bytes.Contains(full.body, []byte(`"n":5`)) {
		t.Fatalf("replace without Prefer: %s, want the item", full.body)
	}
}

// The bounds and headers of batch and bulk requests: a bulk request that
// stops on the first error leaves the rest unapplied (424); a transactional
// batch needs its partition key header; at most 100 operations.
func TestServer_Batch(t *testing.T) {
	n := newNode(t)
	bulk := map[string]string{"x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "false", "x-ms-cosmos-batch-continue-on-error": "false"}
	ops := `[{"operationType":"Create","resourceBody":{"id":"a","region":"east"}},
		{"operationType":"Read","id":"missing","partitionKey":"[\"east\"]"},
		{"operationType":"Create","resourceBody":{"id":"b","region":"east"}}]`
	r := n.ok(n.do("POST", docs, "docs", collLink, ops, bulk), http.StatusMultiStatus)
	var res []struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].StatusCode != 201 || res[1].StatusCode != 404 || res[2].StatusCode != 424 {
		t.Fatalf("bulk results %s, want 201, 404, 424", r.body)
	}
	n.ok(n.do("GET", docs+"/b", "docs", collLink+"/docs/b", "", nil), http.StatusNotFound)

	atomic := map[string]string{"x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "true"}
	n.ok(n.do("POST", docs, "docs", collLink, `[{"operationType":"Read","id":"a"}]`, atomic), http.StatusBadRequest)
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"operationType":"Read","id":"a"},`, 101), ",") + "]"
	atomic["x-ms-documentdb-partitionkey"] = `["east"]`
	n.ok(n.do("POST", docs, "docs", collLink, many, atomic), http.StatusBadRequest)
	n.ok(n.do("POST", docs, "docs", collLink, `[{"operationType":"Read","id":"a"}]`, atomic), http.StatusOK)
}

// A patch condition is evaluated for at most a quarter of a second: in a
// transactional batch it runs inside the node's write transaction.
func TestServer_PatchConditionBounded(t *testing.T) {
	n := newNode(t)
	xs := strings.TrimSuffix(strings.Repeat("1,", 3000), ",")
	if _, err := n.r.Create(context.Background(), "shop.products", []byte(`{"id":"big","region":"east","x":[`+xs+`]}`)); err != nil {
		t.Fatal(err)
	}
	body := `{"condition":"FROM c JOIN a IN c.x JOIN b IN c.x JOIN d IN c.x WHERE a + b + d < 0","operations":[{"op":"set","path":"/y","value":1}]}`
	start := time.Now()
	n.ok(n.do("PATCH", docs+"/big", "docs", collLink+"/docs/big", body, pkHeader("east")), http.StatusRequestTimeout)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the condition ran %v, want it stopped within 2s", took)
	}
}
