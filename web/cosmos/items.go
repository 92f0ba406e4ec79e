package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/replica"
)

// maxBody is the largest item body taken: a document at the limit plus the
// system properties a client sends back with it.
const maxBody = replica.MaxDocumentSize + 4<<10

// cosmosOnly are the Cosmos system properties edgesync does not store: a
// client that writes back a document it read sends them, and they are
// dropped. (edgesync's own, _ts, _etag, _lsn, _crts and _tentative, are
// ignored by every write anyway.)
var cosmosOnly = []string{"_rid", "_self", "_attachments"}

// appendItem appends an item as Cosmos DB returns it: the body, the system
// properties edgesync keeps (_ts, _etag, and _lsn, _crts or _tentative) and
// _rid, _self and _attachments.
func appendItem(dst []byte, it *replica.Item, db, coll string) []byte {
	dst = it.AppendJSON(dst)
	dst = dst[:len(dst)-1] // the closing brace
	r := rid("dbs/"+db+"/colls/"+coll+"/docs/"+it.ID, 12)
	dst = append(dst, `,"_rid":`...)
	dst = strconv.AppendQuote(dst, r)
	dst = append(dst, `,"_self":`...)
	dst = strconv.AppendQuote(dst, "dbs/"+rid("dbs/"+db, 4)+"/colls/"+rid("dbs/"+db+"/colls/"+coll, 8)+"/docs/"+r+"/")
	dst = append(dst, `,"_attachments":"attachments/"}`...)
	return dst
}

// writeDocuments answers 200 with a page of n documents in the body of
// Cosmos DB's feeds, {"_rid":...,"Documents":[...],"_count":n}, and the
// x-ms-item-count header; continuation, when not "", is sent as
// x-ms-continuation. doc appends the i'th document to buf.
func (s *Server) writeDocuments(q *request, n int, doc func(buf []byte, i int) []byte, continuation string) {
	buf := append(make([]byte, 0, 256), `{"_rid":`...)
	buf = strconv.AppendQuote(buf, rid("dbs/"+q.res.db+"/colls/"+q.res.coll, 8))
	buf = append(buf, `,"Documents":[`...)
	for i := range n {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = doc(buf, i)
	}
	buf = append(buf, `],"_count":`...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	buf = append(buf, '}')
	if continuation != "" {
		q.w.Header().Set("x-ms-continuation", continuation)
	}
	q.w.Header().Set("x-ms-item-count", strconv.Itoa(n))
	s.writeBody(q, http.StatusOK, buf)
}

// writeItem answers with the item; a write sent with "Prefer:
// return=minimal" (azcosmos sends it unless the app asks for the content) is
// answered with the status and headers only, as Cosmos DB answers it.
func (s *Server) writeItem(q *request, status int, it *replica.Item) {
	q.w.Header().Set("etag", it.ETag())
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodHead && preferMinimal(q.r.Header) {
		s.writeBody(q, status, nil)
		return
	}
	s.writeBody(q, status, appendItem(nil, it, q.res.db, q.res.coll))
}

// preferMinimal reports whether the request's Prefer header holds
// return=minimal.
func preferMinimal(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// cleanBody drops the Cosmos-only system properties from a document's top
// level, keeping every other member's bytes and order.
func cleanBody(body []byte) ([]byte, error) {
	found := false
	for _, k := range cosmosOnly {
		if bytes.Contains(body, []byte(`"`+k+`"`)) {
			found = true
		}
	}
	if !found {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return body, nil // not an object: the engine says what is wrong
	}
	out := append(make([]byte, 0, len(body)), '{')
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return body, nil
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return body, nil
		}
		drop := false
		for _, k := range cosmosOnly {
			drop = drop || key == k
		}
		if drop {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(key)
		out = append(append(append(out, kb...), ':'), v...)
		n++
	}
	return append(out, '}'), nil
}

// checkPK checks the x-ms-documentdb-partitionkey header, when present,
// against the partition key value of body in container c.
func checkPK(q *request, c replica.Container, body []byte) error {
	want, ok, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil || !ok {
		return err
	}
	return checkBodyPK(c, body, want)
}

// checkBodyPK checks that the partition key value of body in container c
// is want.
func checkBodyPK(c replica.Container, body []byte, want string) error {
	v := json.RawMessage(body)
	for seg := range strings.SplitSeq(strings.TrimPrefix(c.PartitionKey, "/"), "/") {
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return nil // the engine rejects the body and says why
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if v = m[seg]; v == nil {
			break
		}
	}
	var got string
	if v == nil || json.Unmarshal(v, &got) != nil || got != want {
		return fmt.Errorf("%w: the partition key value of the document at %s differs from %q", replica.ErrInvalid, c.PartitionKey, want)
	}
	return nil
}

// itemBody reads the container the path names and the document of a create
// or replace: at most maxBody bytes, cleaned, with the partition key value the
// x-ms-documentdb-partitionkey header names, if any.
func (s *Server) itemBody(q *request) (replica.Container, []byte, error) {
	c, err := s.container(q)
	if err != nil {
		return c, nil, err
	}
	body, err := readBody(q, maxBody)
	if err != nil {
		return c, nil, err
	}
	if body, err = cleanBody(body); err != nil {
		return c, nil, err
	}
	if err := checkPK(q, c, body); err != nil {
		return c, nil, err
	}
	return c, body, nil
}

// createItem is POST .../docs: create (201, 409 when the id exists), or
// upsert with x-ms-documentdb-is-upsert (201 created, 200 replaced).
func (s *Server) createItem(q *request) error {
	c, body, err := s.itemBody(q)
	if err != nil {
		return err
	}
	if isTrue(q.r.Header.Get("x-ms-documentdb-is-upsert")) {
		var id struct {
			ID *string `json:"id"`
		}
		if err := json.Unmarshal(body, &id); err != nil || id.ID == nil {
			return fmt.Errorf("%w: an upserted document needs a string id", replica.ErrInvalid)
		}
		it, created, err := s.e.Upsert(q.ctx, c.Name, *id.ID, body, q.r.Header.Get("If-Match"))
		if err != nil {
			return err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		s.writeItem(q, status, &it)
		return nil
	}
	it, err := s.e.Create(q.ctx, c.Name, body)
	if err != nil {
		return err
	}
	s.writeItem(q, http.StatusCreated, &it)
	return nil
}

// item reads the item the path names; with the partition key header, an
// item with another partition key value is not found, as in Cosmos DB.
func (s *Server) item(q *request) (replica.Container, replica.Item, error) {
	c, err := s.container(q)
	if err != nil {
		return c, replica.Item{}, err
	}
	if err := replica.ValidateID(q.res.id); err != nil {
		return c, replica.Item{}, err
	}
	pk, hasPK, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil {
		return c, replica.Item{}, err
	}
	it, err := s.e.Get(q.ctx, c.Name, q.res.id)
	if err != nil {
		return c, it, err
	}
	if hasPK && it.PK != pk {
		return c, replica.Item{}, fmt.Errorf("%w: item %q in partition %q", replica.ErrNotFound, q.res.id, pk)
	}
	return c, it, nil
}

func (s *Server) readItem(q *request) error {
	_, it, err := s.item(q)
	if err != nil {
		return err
	}
	if inm := q.r.Header.Get("If-None-Match"); inm != "" && inm == it.ETag() {
		q.w.Header().Set("etag", it.ETag())
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	s.writeItem(q, http.StatusOK, &it)
	return nil
}

// replaceItem is PUT .../docs/{id}: the item must exist (404), and with
// If-Match have that etag (412).
func (s *Server) replaceItem(q *request) error {
	c, body, err := s.itemBody(q)
	if err != nil {
		return err
	}
	ifMatch := q.r.Header.Get("If-Match")
	cond := ifMatch
	if cond == "" {
		cond = "*"
	}
	it, _, err := s.e.Upsert(q.ctx, c.Name, q.res.id, body, cond)
	if err != nil {
		if ifMatch == "" && errors.Is(err, replica.ErrPreconditionFailed) {
			return fmt.Errorf("%w: item %q", replica.ErrNotFound, q.res.id)
		}
		return err
	}
	s.writeItem(q, http.StatusOK, &it)
	return nil
}

func (s *Server) deleteItem(q *request) error {
	ifMatch := q.r.Header.Get("If-Match")
	for range maxPatchRetries {
		c, it, err := s.item(q)
		if err != nil {
			return err
		}
		cond := ifMatch
		if cond == "" {
			// Delete the version read, so that the partition key check
			// holds; a newer version is read and deleted in its turn.
			cond = it.ETag()
		}
		err = s.e.Delete(q.ctx, c.Name, it.ID, cond)
		if ifMatch == "" && errors.Is(err, replica.ErrPreconditionFailed) {
			continue
		}
		if err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return fmt.Errorf("%w: item %q kept changing while it was deleted", replica.ErrPreconditionFailed, q.res.id)
}

// readItems is GET .../docs: every item, a page at a time.
func (s *Server) readItems(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	pk, hasPK, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil {
		return err
	}
	n, err := pageSize(q)
	if err != nil {
		return err
	}
	p, err := s.e.List(q.ctx, c.Name, pk, hasPK, n, q.r.Header.Get("x-ms-continuation"))
	if err != nil {
		return err
	}
	s.writeDocuments(q, len(p.Items), func(buf []byte, i int) []byte {
		return appendItem(buf, &p.Items[i], q.res.db, q.res.coll)
	}, p.Continuation)
	return nil
}
