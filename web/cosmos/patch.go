package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/replica"
)

// maxPatchRetries bounds how often a patch is applied again when the item
// changed between its read and its write.
const maxPatchRetries = 5

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
// version, which is then written over it as one write (If-Match the version
// read, so a concurrent write is never lost: the patch is applied again to
// the newer version, up to maxPatchRetries times).
func (s *Server) patchItem(q *request) error {
	body, err := readBody(q, maxPatchBody)
	if err != nil {
		return err
	}
	// The body is {"operations": [...], "condition": ...}, or the bare
	// array of operations.
	var pb patchBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		err = dec.Decode(&pb.Operations)
	} else {
		err = dec.Decode(&pb)
	}
	if err != nil {
		return fmt.Errorf("%w body: %v", errPatch, err)
	}
	if len(pb.Operations) == 0 || len(pb.Operations) > maxPatchOps {
		return fmt.Errorf("%w: %d operations: want 1..%d", errPatch, len(pb.Operations), maxPatchOps)
	}
	if pb.Condition != "" {
		return fmt.Errorf("%w: a patch with a condition (filter predicate)", errNotSupported)
	}
	ifMatch := q.r.Header.Get("If-Match")
	for range maxPatchRetries {
		c, it, err := s.item(q)
		if err != nil {
			return err
		}
		if ifMatch != "" && ifMatch != it.ETag() {
			return fmt.Errorf("%w: item %q has etag %s", replica.ErrPreconditionFailed, it.ID, it.ETag())
		}
		doc, err := decodeNumbers(it.Body)
		if err != nil {
			return fmt.Errorf("decode stored item: %w", err)
		}
		for i, op := range pb.Operations {
			if doc, err = applyPatch(doc, op, c.PartitionKey); err != nil {
				return fmt.Errorf("%w: operation %d (%s %s): %v", errPatch, i, op.Op, op.Path, err)
			}
		}
		out, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("%w: %v", errPatch, err)
		}
		nit, _, err := s.e.Upsert(q.ctx, c.Name, it.ID, out, it.ETag())
		if errors.Is(err, replica.ErrPreconditionFailed) && ifMatch == "" {
			continue
		}
		if err != nil {
			return err
		}
		s.writeItem(q, http.StatusOK, &nit)
		return nil
	}
	return fmt.Errorf("%w: item %q kept changing while it was patched", replica.ErrPreconditionFailed, q.res.id)
}

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
