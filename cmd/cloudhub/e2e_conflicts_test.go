package main

// End-to-end scenarios: concurrent writes on two edges and how the hub decides them.

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// e2ePriceDoc is prod-123 at a price.
func e2ePriceDoc(price float64) string {
	return fmt.Sprintf(`{"id":"prod-123","productId":"prod-123","name":"Super Widget","price":%v}`, price)
}

// TestE2E_ConcurrentPriceUpdate is the seed's scenario: with the hub gone,
// east sets prod-123's price to 24.99 and west to 21.99; lww on /price makes
// 24.99 win everywhere whichever write the hub sees first, and the 21.99
// version is the loser in the conflicts feed.
func TestE2E_ConcurrentPriceUpdate(t *testing.T) {
	for _, order := range []string{"together", "east first", "west first"} {
		t.Run(strings.ReplaceAll(order, " ", "_"), func(t *testing.T) { testConcurrentPriceUpdate(t, order) })
	}
}

func testConcurrentPriceUpdate(t *testing.T, order string) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/products",
		`{"partitionKey":"/productId","conflictPolicy":{"mode":"lww","path":"/price"}}`, http.StatusCreated, nil)
	var orig e2eDoc
	c.hub.call(http.MethodPost, "/api/v1/containers/products/docs", e2ePriceDoc(19.99), http.StatusCreated, &orig)
	east := c.startEdge("east", c.registerEdge("east", nil))
	west := c.startEdge("west", c.registerEdge("west", nil))
	north := c.startEdge("north", c.registerEdge("north", nil)) // only watches
	all := []*e2eNode{east, west, north}
	c.waitSynced(15*time.Second, all...)
	for _, e := range all {
		if status, d := e.getDoc("products", "prod-123", "?consistency=confirmed"); status != http.StatusOK || d["price"] != 19.99 {
			t.Fatalf("%s before the update: status %d %v, want price 19.99", e.name, status, d)
		}
	}

	c.hub.stop()
	e2eWaitDisconnected(t, all...)
	var ed, wd e2eDoc
	east.call(http.MethodPut, "/api/v1/containers/products/docs/prod-123", e2ePriceDoc(24.99), http.StatusOK, &ed)
	west.call(http.MethodPut, "/api/v1/containers/products/docs/prod-123", e2ePriceDoc(21.99), http.StatusOK, &wd)
	e2eWantTentative(t, "east PUT response", ed)
	e2eWantTentative(t, "west PUT response", wd)
	eastNode, westNode := east.mustEdgeStatus().NodeID, west.mustEdgeStatus().NodeID
	eastW, _ := e2eOwnWrites(t, east.changes("products"), eastNode)
	westW, _ := e2eOwnWrites(t, west.changes("products"), westNode)
	eastV, westV := eastW["prod-123"].Version, westW["prod-123"].Version
	if eastV == "" || westV == "" {
		t.Fatalf("no own write of prod-123 in the feeds: east %q, west %q", eastV, westV)
	}

	switch order {
	case "together":
		c.heal(true, all...)
	case "east first":
		c.heal(false, east, west, north)
	case "west first":
		c.heal(false, west, east, north)
	}

	_, hubDoc := c.hub.getDoc("products", "prod-123", "")
	if hubDoc["price"] != 24.99 {
		t.Fatalf("hub: price %v, want 24.99 (lww on /price)", hubDoc["price"])
	}
	if hubDoc["_etag"] != ed["_etag"] {
		t.Errorf("hub: _etag %v, want east's version's %v", hubDoc["_etag"], ed["_etag"])
	}
	winnerLSN := e2eLSN(hubDoc)
	for _, e := range all {
		for _, q := range []string{"", "?consistency=confirmed"} {
			status, d := e.getDoc("products", "prod-123", q)
			if status != http.StatusOK || !reflect.DeepEqual(d, hubDoc) {
				t.Errorf("%s: GET prod-123%s: status %d %v, want the hub's %v", e.name, q, status, d, hubDoc)
			}
		}
	}

	cs := c.hub.conflicts("products", "")
	if len(cs) != 1 {
		t.Fatalf("conflicts feed has %d records, want 1: %+v", len(cs), cs)
	}
	cf := cs[0]
	if cf.Kind != "replace" || cf.Status != "resolved" || cf.DocID != "prod-123" || cf.Policy != "lww" || cf.WinnerLSN != winnerLSN {
		t.Errorf("conflict: kind %s status %s docId %s policy %s winnerLsn %d; want replace resolved prod-123 lww %d",
			cf.Kind, cf.Status, cf.DocID, cf.Policy, cf.WinnerLSN, winnerLSN)
	}
	if got := c.hub.conflicts("products", "unresolved"); len(got) != 0 {
		t.Errorf("?status=unresolved: %d conflicts, want 0", len(got))
	}
	if got := c.hub.conflicts("products", "resolved"); len(got) != 1 {
		t.Errorf("?status=resolved: %d conflicts, want 1", len(got))
	}
	loser, winner := cf.Incoming, cf.Existing
	if cf.Loser == "existing" {
		loser, winner = cf.Existing, cf.Incoming
	} else if cf.Loser != "incoming" {
		t.Fatalf("conflict loser %q, want incoming or existing", cf.Loser)
	}
	if loser == nil || loser.Version != westV || loser.Origin != westNode || loser.field("price") != 21.99 {
		t.Errorf("conflict loser (%s) %s, want west's version %s with price 21.99", cf.Loser, loser, westV)
	}
	if winner == nil || winner.Version != eastV || winner.field("price") != 24.99 {
		t.Errorf("conflict winner %s, want east's version %s with price 24.99", winner, eastV)
	}
	if cf.Base == nil || cf.Base.field("price") != 19.99 || cf.Base.Version != strings.Trim(orig["_etag"].(string), `"`) {
		t.Errorf("conflict base %s, want the 19.99 version created at the hub", cf.Base)
	}

	// Every edge has the conflict in its own conflicts feed, as the hub
	// records it (streamed over sync; readable offline).
	for _, e := range all {
		e2eWaitFor(t, 10*time.Second, e.name+"'s conflicts feed", func() error {
			got := e.conflicts("products", "resolved")
			if len(got) != 1 {
				return fmt.Errorf("%d resolved conflicts, want 1", len(got))
			}
			g := got[0]
			if g.ID != cf.ID || g.DocID != cf.DocID || g.Loser != cf.Loser || g.WinnerLSN != cf.WinnerLSN ||
				g.Incoming == nil || g.Incoming.Version != cf.Incoming.Version || g.Existing == nil || g.Existing.Version != cf.Existing.Version {
				return fmt.Errorf("record %+v, want the hub's %+v", g, cf)
			}
			return nil
		})
	}

	// The hub's log holds east's version at the winning LSN, and west's
	// only if it was confirmed before east's arrived.
	logByVersion := map[string]e2eRecord{}
	for _, r := range c.hub.changes("products") {
		if _, dup := logByVersion[r.Version]; dup {
			t.Errorf("hub log has version %s twice", r.Version)
		}
		logByVersion[r.Version] = r
	}
	if r, ok := logByVersion[eastV]; !ok || r.LSN != winnerLSN {
		t.Errorf("hub log: east's version %s at %+v, want LSN %d", eastV, r, winnerLSN)
	}
	eastOut := e2eOutcomes(east.changes("products"))[eastV]
	if len(eastOut) != 1 || eastOut[0].Outcome != "confirmed" || eastOut[0].LSN != winnerLSN {
		t.Errorf("east's outcomes %+v, want one confirmed at LSN %d", eastOut, winnerLSN)
	}
	westOut := e2eOutcomes(west.changes("products"))[westV]
	if len(westOut) != 1 {
		t.Fatalf("west's outcomes for %s: %+v, want exactly one", westV, westOut)
	}
	wr, westLogged := logByVersion[westV]
	switch cf.Loser {
	case "incoming": // east's write was confirmed first; west's lost
		t.Logf("%s: west's write arrived second and lost", order)
		if westLogged {
			t.Errorf("hub log has west's losing version at LSN %d", wr.LSN)
		}
		if o := westOut[0]; o.Outcome != "lost" || o.LSN != winnerLSN {
			t.Errorf("west's outcome %s at LSN %d, want lost at the winner's LSN %d", o.Outcome, o.LSN, winnerLSN)
		}
	case "existing": // west's write was confirmed, then superseded by east's
		t.Logf("%s: west's write was confirmed, then superseded by east's", order)
		if !westLogged || wr.LSN >= winnerLSN {
			t.Errorf("hub log: west's version %s at %+v, want an LSN before %d", westV, wr, winnerLSN)
		}
		if o := westOut[0]; o.Outcome != "confirmed" || o.LSN != wr.LSN {
			t.Errorf("west's outcome %s at LSN %d, want confirmed at %d", o.Outcome, o.LSN, wr.LSN)
		}
	}
	switch {
	case order == "east first" && cf.Loser != "incoming":
		t.Errorf("east first: loser %s, want incoming (west's write arrived second)", cf.Loser)
	case order == "west first" && cf.Loser != "existing":
		t.Errorf("west first: loser %s, want existing (west's write was confirmed first)", cf.Loser)
	}
}

// TestE2E_DeleteVersusUpdate deletes an item on one edge and updates it on
// another while the hub is gone: after healing it is deleted everywhere,
// whichever arrives first, and the update is in the conflicts feed (kind
// delete).
func TestE2E_DeleteVersusUpdate(t *testing.T) {
	for _, order := range []string{"delete first", "update first"} {
		t.Run(strings.ReplaceAll(order, " ", "_"), func(t *testing.T) { testDeleteVersusUpdate(t, order) })
	}
}

func testDeleteVersusUpdate(t *testing.T, order string) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/items", `{"partitionKey":"/pk","conflictPolicy":{"mode":"lww"}}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/items/docs", `{"id":"item-1","pk":"a","qty":1}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/items/docs", `{"id":"item-2","pk":"a","qty":2}`, http.StatusCreated, nil)
	del := c.startEdge("deleter", c.registerEdge("deleter", nil))
	upd := c.startEdge("updater", c.registerEdge("updater", nil))
	c.waitSynced(15*time.Second, del, upd)

	c.hub.stop()
	e2eWaitDisconnected(t, del, upd)
	del.call(http.MethodDelete, "/api/v1/containers/items/docs/item-1", nil, http.StatusNoContent, nil)
	var ud e2eDoc
	upd.call(http.MethodPut, "/api/v1/containers/items/docs/item-1", `{"id":"item-1","pk":"a","qty":99}`, http.StatusOK, &ud)
	e2eWantTentative(t, "updater PUT response", ud)
	if status, _ := del.getDoc("items", "item-1", ""); status != http.StatusNotFound {
		t.Errorf("deleter: GET item-1 after its delete: status %d, want 404", status)
	}
	delNode, updNode := del.mustEdgeStatus().NodeID, upd.mustEdgeStatus().NodeID
	dw, _ := e2eOwnWrites(t, del.changes("items"), delNode)
	uw, _ := e2eOwnWrites(t, upd.changes("items"), updNode)
	delV, updV := dw["item-1"].Version, uw["item-1"].Version
	if dw["item-1"].Op != "delete" || updV == "" {
		t.Fatalf("own writes: deleter %+v, updater %+v; want a delete and a replace of item-1", dw["item-1"], uw["item-1"])
	}

	if order == "delete first" {
		c.heal(false, del, upd)
	} else {
		c.heal(false, upd, del)
	}

	for _, n := range []*e2eNode{c.hub, del, upd} {
		for _, q := range []string{"", "?consistency=confirmed"} {
			if n == c.hub && q != "" {
				continue
			}
			if status, d := n.getDoc("items", "item-1", q); status != http.StatusNotFound {
				t.Errorf("%s: GET item-1%s: status %d %v, want 404 (a delete wins)", n.name, q, status, d)
			}
		}
		if status, d := n.getDoc("items", "item-2", ""); status != http.StatusOK || d["qty"] != 2.0 {
			t.Errorf("%s: GET item-2 (untouched): status %d %v, want 200 qty 2", n.name, status, d)
		}
	}
	var deleteLSN int64
	for _, r := range c.hub.changes("items") {
		if r.Version == delV {
			if r.Op != "delete" || deleteLSN != 0 {
				t.Errorf("hub log: %+v for the delete (seen before: %v)", r, deleteLSN != 0)
			}
			deleteLSN = r.LSN
		}
	}
	if deleteLSN == 0 {
		t.Fatalf("hub log has no record of the delete %s", delV)
	}
	cs := c.hub.conflicts("items", "")
	if len(cs) != 1 {
		t.Fatalf("conflicts feed has %d records, want 1: %+v", len(cs), cs)
	}
	cf := cs[0]
	if cf.Kind != "delete" || cf.DocID != "item-1" || cf.Status != "resolved" || cf.Policy != "lww" || cf.WinnerLSN != deleteLSN {
		t.Errorf("conflict: kind %s docId %s status %s policy %s winnerLsn %d; want delete item-1 resolved lww %d",
			cf.Kind, cf.DocID, cf.Status, cf.Policy, cf.WinnerLSN, deleteLSN)
	}
	wantLoser := "incoming" // the update arrived after the delete
	if order == "update first" {
		wantLoser = "existing" // the update was confirmed, then deleted
	}
	loser, winner := cf.Incoming, cf.Existing
	if cf.Loser == "existing" {
		loser, winner = cf.Existing, cf.Incoming
	}
	if cf.Loser != wantLoser || loser == nil || loser.Version != updV || loser.Deleted || loser.field("qty") != 99.0 {
		t.Errorf("conflict loser %q %s, want %s: the update %s with qty 99", cf.Loser, loser, wantLoser, updV)
	}
	if winner == nil || winner.Version != delV || !winner.Deleted {
		t.Errorf("conflict winner %s, want the delete %s", winner, delV)
	}
	wantOutcome := "lost"
	if order == "update first" {
		wantOutcome = "confirmed"
	}
	if o := e2eOutcomes(upd.changes("items"))[updV]; len(o) != 1 || o[0].Outcome != wantOutcome {
		t.Errorf("updater's outcomes for %s: %+v, want one %s", updV, o, wantOutcome)
	}
	if o := e2eOutcomes(del.changes("items"))[delV]; len(o) != 1 || o[0].Outcome != "confirmed" || o[0].LSN != deleteLSN {
		t.Errorf("deleter's outcomes for %s: %+v, want one confirmed at LSN %d", delV, o, deleteLSN)
	}
}
