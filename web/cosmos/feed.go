package cosmos

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// Change feed modes, as the A-IM header names them.
const (
	aimLatestVersion = "incremental feed"
	aimAllVersions   = "full-fidelity feed"
)

// changeFeed is GET .../docs with A-IM: the container's change feed from a
// position the etag carries. The position is the node's own feed position
// (an edge's local sequence, a hub's LSN): If-None-Match "*" starts from
// now, no If-None-Match from the beginning, If-Modified-Since from a time.
// Nothing new is 304 with the same etag.
//
// Latest version mode returns each changed item once per page, as its
// newest version in the page, without deletes. All versions and deletes
// mode returns every version and delete as {current, previous, metadata}
// with metadata.lsn and metadata.crts (the hub's log position and
// confirmation time; 0 while tentative on an edge) and previous when the
// version it replaced is in the same page.
func (s *Server) changeFeed(q *request, aim string) error {
	all := false
	switch strings.ToLower(aim) {
	case aimLatestVersion:
	case aimAllVersions:
		all = true
	default:
		return fmt.Errorf("%w: A-IM %q: want \"Incremental Feed\" or \"Full-Fidelity Feed\"", replica.ErrInvalid, aim)
	}
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
	var since int64
	switch inm := q.r.Header.Get("If-None-Match"); inm {
	case "":
	case "*":
		since = s.e.Head()
	default:
		since, err = strconv.ParseInt(strings.Trim(inm, `"`), 10, 64)
		if err != nil || since < 0 {
			return fmt.Errorf("%w: If-None-Match %q is not a change feed position of this node", replica.ErrInvalid, inm)
		}
	}
	var from int64
	if ims := q.r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := time.Parse(time.RFC1123, ims)
		if err != nil {
			return fmt.Errorf("%w: If-Modified-Since %q: want an RFC 1123 date", replica.ErrInvalid, ims)
		}
		from = t.Unix()
	}
	changes, next, err := s.e.Changes(q.ctx, c.Name, since, n)
	if err != nil {
		return err
	}
	etag := `"` + strconv.FormatInt(next, 10) + `"`
	q.w.Header().Set("etag", etag)
	var docs []json.RawMessage
	if all {
		docs = allVersions(changes, pk, hasPK, from, q.res.db, q.res.coll)
	} else {
		docs = latestVersions(changes, pk, hasPK, from, q.res.db, q.res.coll)
	}
	if len(docs) == 0 {
		q.w.Header().Set("x-ms-item-count", "0")
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	s.writeDocuments(q, len(docs), func(buf []byte, i int) []byte {
		return append(buf, docs[i]...)
	}, "")
	return nil
}

func keep(ch *replica.Change, pk string, hasPK bool, from int64) bool {
	return (!hasPK || ch.PK == pk) && ch.TS >= from
}

// itemOfChange renders a change's document as an item: the record's
// document already carries edgesync's system properties; the Cosmos ones
// are added.
func itemOfChange(ch *replica.Change, db, coll string) json.RawMessage {
	doc := ch.Document
	r := rid("dbs/"+db+"/colls/"+coll+"/docs/"+ch.ID, 12)
	out := append([]byte{}, doc[:len(doc)-1]...)
	out = append(out, `,"_rid":`...)
	out = strconv.AppendQuote(out, r)
	out = append(out, `,"_self":`...)
	out = strconv.AppendQuote(out, "dbs/"+rid("dbs/"+db, 4)+"/colls/"+rid("dbs/"+db+"/colls/"+coll, 8)+"/docs/"+r+"/")
	return append(out, `,"_attachments":"attachments/"}`...)
}

func latestVersions(changes []replica.Change, pk string, hasPK bool, from int64, db, coll string) []json.RawMessage {
	last := map[string]int{}
	for i := range changes {
		ch := &changes[i]
		if !keep(ch, pk, hasPK, from) {
			continue
		}
		if ch.Op == replica.OpDelete {
			delete(last, ch.ID)
			continue
		}
		last[ch.ID] = i
	}
	var out []json.RawMessage
	for i := range changes {
		if j, ok := last[changes[i].ID]; ok && j == i {
			out = append(out, itemOfChange(&changes[i], db, coll))
		}
	}
	return out
}

// avadMetadata is the metadata of one record of the all versions and
// deletes feed. lsn and crts are the hub's; the rest are edgesync's.
type avadMetadata struct {
	OperationType    string `json:"operationType"`
	LSN              int64  `json:"lsn"`
	CRTS             int64  `json:"crts"`
	PreviousImageLSN int64  `json:"previousImageLSN,omitempty"`
	TimeToLive       bool   `json:"timeToLiveExpired"`
	ID               string `json:"id"`
	PartitionKey     string `json:"partitionKey"`
	Version          string `json:"version"`
	Origin           string `json:"origin"`
	Tentative        bool   `json:"tentative,omitempty"`
	TS               int64  `json:"ts"`
}

func allVersions(changes []replica.Change, pk string, hasPK bool, from int64, db, coll string) []json.RawMessage {
	byVersion := map[string]*replica.Change{}
	var out []json.RawMessage
	for i := range changes {
		ch := &changes[i]
		if ch.Document != nil {
			byVersion[ch.Version] = ch
		}
		if !keep(ch, pk, hasPK, from) {
			continue
		}
		md := avadMetadata{OperationType: ch.Op, LSN: ch.LSN, CRTS: ch.CRTS, ID: ch.ID, PartitionKey: ch.PK,
			Version: ch.Version, Origin: ch.Origin, Tentative: ch.Tentative, TS: ch.TS}
		rec := map[string]any{}
		if ch.Document != nil {
			rec["current"] = itemOfChange(ch, db, coll)
		}
		if prev := byVersion[ch.Base]; ch.Base != "" && prev != nil {
			rec["previous"] = itemOfChange(prev, db, coll)
			md.PreviousImageLSN = prev.LSN
		}
		rec["metadata"] = md
		b, err := json.Marshal(rec)
		if err != nil {
			continue // all parts are valid JSON; nothing to report
		}
		out = append(out, b)
	}
	return out
}

// conflictJSON states a conflict record as Cosmos DB's conflict resource:
// content is the losing version's document as a JSON string; edgesync's
// record (status, reason, both sides) is beside it.
func conflictJSON(cf *wire.Conflict, db, coll string) map[string]any {
	op := cf.Kind
	if op == "insert" {
		op = "create"
	}
	loser := cf.Incoming
	if cf.Loser == "existing" {
		loser = cf.Existing
	}
	content := ""
	if loser != nil && len(loser.Document) > 0 && string(loser.Document) != "null" {
		content = string(loser.Document)
	}
	id := strconv.FormatInt(cf.ID, 10)
	r := rid("dbs/"+db+"/colls/"+coll+"/conflicts/"+id, 12)
	return map[string]any{
		"id":            id,
		"_rid":          r,
		"_self":         "dbs/" + rid("dbs/"+db, 4) + "/colls/" + rid("dbs/"+db+"/colls/"+coll, 8) + "/conflicts/" + r + "/",
		"_etag":         `"` + r + `"`,
		"_ts":           cf.CreatedAt,
		"resourceType":  "document",
		"operationType": op,
		"resourceId":    rid("dbs/"+db+"/colls/"+coll+"/docs/"+cf.DocID, 12),
		"content":       content,
		"docId":         cf.DocID,
		"status":        cf.Status,
		"reason":        cf.Reason,
		"policy":        cf.Policy,
		"loser":         cf.Loser,
		"winnerLsn":     cf.WinnerLSN,
		"incoming":      cf.Incoming,
		"existing":      cf.Existing,
	}
}

// readConflicts is GET .../conflicts: the container's conflicts feed (on
// an edge, as it has it from its hub), a page at a time.
func (s *Server) readConflicts(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	n, err := pageSize(q)
	if err != nil {
		return err
	}
	var after int64
	if ct := q.r.Header.Get("x-ms-continuation"); ct != "" {
		if after, err = strconv.ParseInt(ct, 10, 64); err != nil || after < 0 {
			return fmt.Errorf("%w: x-ms-continuation %q is not one this node issued", replica.ErrInvalid, ct)
		}
	}
	list, next, err := s.e.Conflicts(q.ctx, c.Name, after, n)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(list))
	for i := range list {
		out = append(out, conflictJSON(&list[i], q.res.db, q.res.coll))
	}
	if len(list) == n {
		q.w.Header().Set("x-ms-continuation", strconv.FormatInt(next, 10))
	}
	q.w.Header().Set("x-ms-item-count", strconv.Itoa(len(out)))
	s.writeJSON(q, http.StatusOK, map[string]any{"_rid": rid("dbs/"+q.res.db+"/colls/"+q.res.coll, 8), "Conflicts": out, "_count": len(out)})
	return nil
}

// readConflict is GET .../conflicts/{id}.
func (s *Server) readConflict(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(q.res.id, 10, 64)
	if err != nil || id < 1 {
		return fmt.Errorf("%w: conflict %q", replica.ErrNotFound, q.res.id)
	}
	list, _, err := s.e.Conflicts(q.ctx, c.Name, id-1, 1)
	if err != nil {
		return err
	}
	if len(list) == 0 || list[0].ID != id {
		return fmt.Errorf("%w: conflict %q", replica.ErrNotFound, q.res.id)
	}
	s.writeJSON(q, http.StatusOK, conflictJSON(&list[0], q.res.db, q.res.coll))
	return nil
}
