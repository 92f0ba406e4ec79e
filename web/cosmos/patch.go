package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// maxPatchRetries bounds how often a patch is applied again when the item
// changed between its read and its write.
const maxPatchRetries = 5

// conditionTimeout bounds the evaluation of a patch condition against one
// document, and of all the conditions of a transactional batch together:
// there they run inside the node's write transaction.
const conditionTimeout = 250 * time.Millisecond

// patchOp is one operation of a partial document update.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

type patchBody struct {
	Operations []patchOp `json:"operations"`
	Condition  string    `json:"condition,omitempty"`
}

var errPatch = fmt.Errorf("%w: patch", replica.ErrInvalid)

// patchItem is PATCH .../docs/{id}: the operations apply to the current
// version, which is then written over it as one write (updateItem).
func (s *Server) patchItem(q *request) error {
	body, err := readBody(q, maxPatchBody)
	if err != nil {
		return err
	}
	pb, err := parsePatch(body)
	if err != nil {
		return err
	}
	c, err := s.container(q)
	if err != nil {
		return err
	}
	if err := replica.ValidateID(q.res.id); err != nil {
		return err
	}
	pk, hasPK, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil {
		return err
	}
	var pkp *string
	if hasPK {
		pkp = &pk
	}
	it, err := updateItem(q.ctx, s.e, c, q.res.id, pkp, q.r.Header.Get("If-Match"), func(cur *replica.Item) ([]byte, error) {
		return patchDoc(q.ctx, c, cur, &pb, conditionTimeout)
	})
	if err != nil {
		return err
	}
	s.writeItem(q, http.StatusOK, &it)
	return nil
}

// parsePatch decodes a patch body: {"operations": [...], "condition": ...},
// or the bare array of operations.
func parsePatch(body []byte) (patchBody, error) {
	var pb patchBody
	var err error
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		err = dec.Decode(&pb.Operations)
	} else {
		err = dec.Decode(&pb)
	}
	if err != nil {
		return pb, fmt.Errorf("%w body: %v", errPatch, err)
	}
	if len(pb.Operations) == 0 || len(pb.Operations) > maxPatchOps {
		return pb, fmt.Errorf("%w: %d operations: want 1..%d", errPatch, len(pb.Operations), maxPatchOps)
	}
	return pb, nil
}

// updateItem writes update's document over the item's current live
// version: If-Match the version read, so a concurrent write is never lost
// (update runs again on the newer version, up to maxPatchRetries times).
// With pk, an item with another partition key value is not found.
func updateItem(ctx context.Context, e Engine, c replica.Container, id string, pk *string, ifMatch string, update func(cur *replica.Item) ([]byte, error)) (replica.Item, error) {
	for range maxPatchRetries {
		it, err := e.Get(ctx, c.Name, id)
		if err != nil {
			return it, err
		}
		if pk != nil && it.PK != *pk {
			return replica.Item{}, fmt.Errorf("%w: item %q in partition %q", replica.ErrNotFound, id, *pk)
		}
		if ifMatch != "" && ifMatch != "*" && ifMatch != it.ETag() {
			return replica.Item{}, fmt.Errorf("%w: item %q has etag %s", replica.ErrPreconditionFailed, it.ID, it.ETag())
		}
		out, err := update(&it)
		if err != nil {
			return replica.Item{}, err
		}
		nit, _, err := e.Upsert(ctx, c.Name, it.ID, out, it.ETag())
		if errors.Is(err, replica.ErrPreconditionFailed) && (ifMatch == "" || ifMatch == "*") {
			continue
		}
		return nit, err
	}
	return replica.Item{}, fmt.Errorf("%w: item %q kept changing while it was updated", replica.ErrPreconditionFailed, id)
}

// patchDoc applies a patch to the item's current version and returns the
// new document. A patch with a condition applies only when the condition
// holds for that version (evaluated for at most limit); otherwise it is
// ErrPreconditionFailed, as Cosmos DB answers it.
func patchDoc(ctx context.Context, c replica.Container, it *replica.Item, pb *patchBody, limit time.Duration) ([]byte, error) {
	if pb.Condition != "" {
		ok, err := conditionHolds(ctx, pb.Condition, it, limit)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: the patch condition %q does not hold for item %q", replica.ErrPreconditionFailed, pb.Condition, it.ID)
		}
	}
	doc, err := decodeNumbers(it.Body)
	if err != nil {
		return nil, fmt.Errorf("decode stored item: %w", err)
	}
	for i, op := range pb.Operations {
		if doc, err = applyPatch(doc, op, c.PartitionKey); err != nil {
			return nil, fmt.Errorf("%w: operation %d (%s %s): %v", errPatch, i, op.Op, op.Path, err)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errPatch, err)
	}
	return out, nil
}

// conditionHolds evaluates a patch condition, a query's FROM clause such as
// "FROM c WHERE c.n > 1", with the node's query engine against one version
// of an item (with its system properties, as a query sees it).
func conditionHolds(ctx context.Context, cond string, it *replica.Item, limit time.Duration) (bool, error) {
	t := strings.TrimSpace(cond)
	if len(t) < 5 || !strings.EqualFold(t[:4], "from") || !isSpace(t[4]) {
		return false, fmt.Errorf("%w: patch condition %q: want a FROM clause, such as \"FROM c WHERE c.n > 1\"", replica.ErrInvalid, cond)
	}
	doc := it.AppendJSON(nil)
	src := func(ctx context.Context, fn func(doc []byte) error) error { return fn(doc) }
	p, err := query.Execute(ctx, query.Request{Query: "SELECT VALUE 1 " + t, Limit: 1}, src, query.Options{Timeout: limit})
	if err != nil {
		return false, fmt.Errorf("patch condition: %w", err)
	}
	return len(p.Documents) > 0, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// splitPointer splits a JSON pointer ("/a/b~1c") into its unescaped
// segments.
func splitPointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return nil, errors.New("path must start with '/' and name a property")
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) > replica.MaxDepth {
		return nil, errors.New("path too deep")
	}
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return segs, nil
}

// applyPatch applies one operation to doc (decoded with json.Number) and
// returns the new document. The id and the partition key cannot change.
func applyPatch(doc any, op patchOp, pkPath string) (any, error) {
	segs, err := splitPointer(op.Path)
	if err != nil {
		return nil, err
	}
	if op.Path == "/id" || op.Path == pkPath || strings.HasPrefix(pkPath, op.Path+"/") {
		return nil, errors.New("the id and the partition key cannot be patched")
	}
	if strings.HasPrefix(segs[0], "_") && (segs[0] == "_ts" || segs[0] == "_etag" || segs[0] == "_rid" || segs[0] == "_self" || segs[0] == "_lsn" || segs[0] == "_crts") {
		return nil, errors.New("system properties cannot be patched")
	}
	var val any
	switch op.Op {
	case "add", "set", "replace", "incr":
		if len(op.Value) == 0 {
			return nil, errors.New("no value")
		}
		if val, err = decodeNumbers(op.Value); err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		if _, ok := val.(json.Number); op.Op == "incr" && !ok {
			return nil, errors.New("incr needs a number")
		}
	case "remove":
	case "move":
		from, err := splitPointer(op.From)
		if err != nil {
			return nil, fmt.Errorf("from: %v", err)
		}
		v, err := getAt(doc, from)
		if err != nil {
			return nil, fmt.Errorf("from: %v", err)
		}
		if doc, err = edit(doc, from, "remove", nil); err != nil {
			return nil, err
		}
		return edit(doc, segs, "set", v)
	default:
		return nil, fmt.Errorf("op %q: want add, set, replace, remove, incr or move", op.Op)
	}
	return edit(doc, segs, op.Op, val)
}

func getAt(doc any, segs []string) (any, error) {
	cur := doc
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[s]
			if !ok {
				return nil, fmt.Errorf("no property %q", s)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("no array element %q", s)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%q is inside a value that is neither an object nor an array", s)
		}
	}
	return cur, nil
}

// edit applies op at segs inside doc: the parent must exist.
func edit(doc any, segs []string, op string, val any) (any, error) {
	parent, err := getAt(doc, segs[:len(segs)-1])
	if err != nil {
		return nil, err
	}
	last := segs[len(segs)-1]
	switch p := parent.(type) {
	case map[string]any:
		cur, exists := p[last]
		switch op {
		case "add", "set":
			p[last] = val
		case "replace":
			if !exists {
				return nil, fmt.Errorf("no property %q to replace", last)
			}
			p[last] = val
		case "remove":
			if !exists {
				return nil, fmt.Errorf("no property %q to remove", last)
			}
			delete(p, last)
		case "incr":
			if !exists {
				p[last] = val
				break
			}
			sum, err := add(cur, val)
			if err != nil {
				return nil, err
			}
			p[last] = sum
		}
		return doc, nil
	case []any:
		var i int
		if last == "-" && op == "add" {
			i = len(p)
		} else {
			n, err := strconv.Atoi(last)
			if err != nil || n < 0 || n > len(p) || (n == len(p) && op != "add") {
				return nil, fmt.Errorf("array index %q out of range", last)
			}
			i = n
		}
		var np []any
		switch op {
		case "add":
			np = append(append(append([]any{}, p[:i]...), val), p[i:]...)
		case "set", "replace":
			np = append([]any{}, p...)
			np[i] = val
		case "remove":
			np = append(append([]any{}, p[:i]...), p[i+1:]...)
		case "incr":
			sum, err := add(p[i], val)
			if err != nil {
				return nil, err
			}
			np = append([]any{}, p...)
			np[i] = sum
		}
		if len(segs) == 1 {
			return np, nil
		}
		return edit(doc, segs[:len(segs)-1], "set", np)
	}
	return nil, fmt.Errorf("%q is inside a value that is neither an object nor an array", last)
}

// add adds two JSON numbers: as integers when both are and the sum fits,
// else as floats.
func add(a, b any) (any, error) {
	x, ok1 := a.(json.Number)
	y, ok2 := b.(json.Number)
	if !ok1 || !ok2 {
		return nil, errors.New("incr needs a number, at a number")
	}
	if i, err := x.Int64(); err == nil {
		if j, err := y.Int64(); err == nil && !(j > 0 && i > math.MaxInt64-j) && !(j < 0 && i < math.MinInt64-j) {
			return json.Number(strconv.FormatInt(i+j, 10)), nil
		}
	}
	f, err1 := x.Float64()
	g, err2 := y.Float64()
	if err1 != nil || err2 != nil || math.IsInf(f+g, 0) {
		return nil, errors.New("incr: number out of range")
	}
	return json.Number(strconv.FormatFloat(f+g, 'g', -1, 64)), nil
}
