package query

import (
	"context"
	"slices"
	"strings"
)

// IndexSource is a source's secondary index: the paths it indexes (each as its
// property names) and a scan of the documents an IndexScan selects.
//
// An index holds, for each document and indexed path, the value at that
// path when it is null, a boolean, a number or a string (never undefined,
// an array or an object), ordered like ORDER BY: by type (null < boolean <
// number < string), then by value, then by document id.
type IndexSource struct {
	Paths []IndexPath
	// Scan calls fn with each document the scan selects, in its order,
	// until fn returns an error, which it returns. It may return a
	// document that does not match (the evaluator filters again), never
	// leave out one that does.
	Scan func(ctx context.Context, s *IndexScan, fn func(doc []byte) error) error
	// Exact, when set, reports whether Scan yields exactly the documents
	// that match s, each checked against the index as it was when the
	// document was read. When it does and WHERE is nothing but s's
	// condition, the evaluator does not check WHERE again (nor decode the
	// properties it reads).
	Exact func(s *IndexScan) bool
}

// IndexPath is one indexed path: its text ("/owner/name") and its
// property names.
type IndexPath struct {
	Path  string
	Names []string
}

// IndexScan selects documents through one indexed path: those whose value
// is one of Values, or else within the bounds (nil: open). Lo and Hi, when
// both set, have the same type.
type IndexScan struct {
	Path   IndexPath
	Values []any
	Lo, Hi *Bound
	// Order is 0 for id order (the order of a full scan), 1 for the
	// index's order (type, value, id), -1 for the reverse of type and
	// value, ties still by id.
	Order int
}

// Bound is one end of a range.
type Bound struct {
	Value     any // null (nil), bool, float64 or string
	Inclusive bool
}

// Plan says how a query reads its container (the "plan" of an explained
// query).
type Plan struct {
	// Scan is "full" (every document) or "index".
	Scan string `json:"scan"`
	// Path is the indexed path and Use what the index answers: "equality",
	// "in" or "range".
	Path string `json:"path,omitempty"`
	Use  string `json:"use,omitempty"`
	// Order is "asc" or "desc" when the index gives ORDER BY's order, so
	// that reading stops once the page is full.
	Order string `json:"order,omitempty"`
	// Filter is what the evaluator checks on each document read.
	Filter string `json:"filter,omitempty"`
}

// plan chooses an index scan for a query, or nil for a full scan. It uses
// one indexed path that a conjunct of WHERE restricts (equality first, then
// IN, then a range), and reads in the index's order when ORDER BY is that
// path alone, without GROUP BY, DISTINCT or aggregates.
func (r *run) plan(ix *IndexSource) *IndexScan {
	q := r.q
	if ix == nil || len(ix.Paths) == 0 || q.From == nil || q.From.Expr != nil || q.Where == nil {
		return nil
	}
	type cand struct {
		eq     []any
		in     bool
		lo, hi *Bound
	}
	cands := map[int]*cand{}
	get := func(e Expr) (int, *cand) {
		names, ok := docPath(e)
		if !ok {
			return -1, nil
		}
		for i, p := range ix.Paths {
			if slices.Equal(p.Names, names) {
				if cands[i] == nil {
					cands[i] = &cand{}
				}
				return i, cands[i]
			}
		}
		return -1, nil
	}
	for _, c := range conjuncts(q.Where, nil) {
		switch c := c.(type) {
		case *Binary:
			l, rt := c.L, c.R
			op := c.Op
			if _, ok := docPath(l); !ok {
				l, rt = rt, l
				op = flip(op)
			}
			i, cd := get(l)
			if i < 0 {
				continue
			}
			v, ok := r.constant(rt)
			if !ok {
				continue
			}
			switch op {
			case "=":
				if cd.eq == nil || cd.in {
					cd.eq, cd.in = []any{v}, false
				}
			case ">", ">=":
				cd.lo = tighter(cd.lo, &Bound{Value: v, Inclusive: op == ">="}, 1)
			case "<", "<=":
				cd.hi = tighter(cd.hi, &Bound{Value: v, Inclusive: op == "<="}, -1)
			}
		case *Between:
			if c.Not {
				continue
			}
			i, cd := get(c.X)
			if i < 0 {
				continue
			}
			lo, ok1 := r.constant(c.Lo)
			hi, ok2 := r.constant(c.Hi)
			if ok1 {
				cd.lo = tighter(cd.lo, &Bound{Value: lo, Inclusive: true}, 1)
			}
			if ok2 {
				cd.hi = tighter(cd.hi, &Bound{Value: hi, Inclusive: true}, -1)
			}
		case *In:
			if c.Not {
				continue
			}
			i, cd := get(c.X)
			if i < 0 || cd.eq != nil {
				continue
			}
			vals := make([]any, 0, len(c.List))
			all := true
			for _, e := range c.List {
				v, ok := r.constant(e)
				if !ok {
					if l, isLit := e.(*Literal); isLit && isUndefined(l.Value) {
						continue // matches nothing
					}
					all = false // an array or object, or an expression
					break
				}
				vals = append(vals, v)
			}
			if all {
				slices.SortFunc(vals, compareOrder)
				cd.eq, cd.in = slices.CompactFunc(vals, func(a, b any) bool { return compareOrder(a, b) == 0 }), true
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	// A single ORDER BY path that is also restricted is read in order.
	order, orderPath := 0, -1
	if len(q.OrderBy) == 1 && !r.grouped() && !q.Distinct {
		if i, _ := get(q.OrderBy[0].Expr); i >= 0 {
			orderPath, order = i, 1
			if q.OrderBy[0].Desc {
				order = -1
			}
		}
	}
	best, bestRank := -1, 0
	for i, cd := range cands {
		rk := 0
		switch {
		case cd.eq != nil && !cd.in:
			rk = 4
		case cd.eq != nil:
			rk = 3
		case cd.lo != nil && cd.hi != nil:
			rk = 2
		case cd.lo != nil || cd.hi != nil:
			rk = 1
		}
		if rk == 0 {
			continue
		}
		if i == orderPath {
			rk += 10
		}
		if rk > bestRank || rk == bestRank && i < best {
			best, bestRank = i, rk
		}
	}
	if best < 0 {
		return nil
	}
	cd := cands[best]
	s := &IndexScan{Path: ix.Paths[best], Values: cd.eq}
	if cd.eq == nil {
		s.Lo, s.Hi = cd.lo, cd.hi
		if s.Lo != nil && s.Hi != nil && rank(s.Lo.Value) != rank(s.Hi.Value) {
			s.Values = []any{} // no value has two types: nothing matches
			s.Lo, s.Hi = nil, nil
		}
	}
	if best == orderPath {
		s.Order = order
	}
	r.whereDone = ix.Exact != nil && ix.Exact(s) && r.indexAnswers(ix.Paths[best].Names, s)
	return s
}

// indexAnswers reports whether scan s selects exactly the rows WHERE keeps:
// WHERE is one equality on the scan's path (not IN), or only range
// conditions on it (at most one lower and one upper bound, each of the
// type of the scan's bound), each with a literal or a parameter. The index
// holds a path's value with its type and compares as the evaluator does
// (numbers as numbers, strings by code point), within the same read as
// the document.
func (r *run) indexAnswers(names []string, s *IndexScan) bool {
	onPath := func(e Expr) bool {
		p, ok := docPath(e)
		return ok && slices.Equal(p, names)
	}
	cs := conjuncts(r.q.Where, nil)
	if s.Values != nil {
		if len(s.Values) != 1 || len(cs) != 1 {
			return false
		}
		b, ok := cs[0].(*Binary)
		if !ok || b.Op != "=" {
			return false
		}
		l, rt := b.L, b.R
		if !onPath(l) {
			l, rt = rt, l
		}
		_, ok = r.constant(rt)
		return ok && onPath(l)
	}
	lo, hi := 0, 0
	sameRank := func(v any, b *Bound) bool { return b != nil && rank(v) == rank(b.Value) }
	for _, c := range cs {
		switch c := c.(type) {
		case *Binary:
			l, rt, op := c.L, c.R, c.Op
			if !onPath(l) {
				l, rt, op = rt, l, flip(op)
			}
			v, ok := r.constant(rt)
			if !ok || !onPath(l) {
				return false
			}
			switch op {
			case ">", ">=":
				lo++
				if !sameRank(v, s.Lo) {
					return false
				}
			case "<", "<=":
				hi++
				if !sameRank(v, s.Hi) {
					return false
				}
			default:
				return false
			}
		case *Between:
			lv, ok1 := r.constant(c.Lo)
			hv, ok2 := r.constant(c.Hi)
			if c.Not || !ok1 || !ok2 || !onPath(c.X) || !sameRank(lv, s.Lo) || !sameRank(hv, s.Hi) {
				return false
			}
			lo++
			hi++
		default:
			return false
		}
	}
	return lo <= 1 && hi <= 1
}

// docPath returns the property names of c.a.b or c["a"]["b"] over the
// document (slot 0 of FROM c).
func docPath(e Expr) ([]string, bool) {
	var names []string
	for {
		switch x := e.(type) {
		case *Member:
			names = append(names, x.Name)
			e = x.X
		case *Index:
			l, ok := x.Index.(*Literal)
			if !ok {
				return nil, false
			}
			s, ok := l.Value.(string)
			if !ok {
				return nil, false
			}
			names = append(names, s)
			e = x.X
		case *Ref:
			if x.Slot != 0 || len(names) == 0 {
				return nil, false
			}
			slices.Reverse(names)
			return names, true
		default:
			return nil, false
		}
	}
}

// constant returns the value of a literal or parameter when it is one an
// index holds (null, boolean, number or string).
func (r *run) constant(e Expr) (any, bool) {
	var v any
	switch e := e.(type) {
	case *Literal:
		v = e.Value
	case *Param:
		p, ok := r.en.params[e.Name]
		if !ok {
			return nil, false
		}
		v = p
	default:
		return nil, false
	}
	switch v.(type) {
	case nil, bool, float64, string:
		return v, true
	}
	return nil, false
}

func conjuncts(e Expr, out []Expr) []Expr {
	if b, ok := e.(*Binary); ok && b.Op == "AND" {
		return conjuncts(b.R, conjuncts(b.L, out))
	}
	return append(out, e)
}

func flip(op string) string {
	switch op {
	case "<":
		return ">"
	case "<=":
		return ">="
	case ">":
		return "<"
	case ">=":
		return "<="
	}
	return op
}

// tighter returns the narrower of two bounds of the same side (dir 1: lower
// bounds, -1: upper); bounds of different types keep the first.
func tighter(a, b *Bound, dir int) *Bound {
	if a == nil {
		return b
	}
	if rank(a.Value) != rank(b.Value) {
		return a
	}
	c := compareOrder(b.Value, a.Value) * dir
	if c > 0 || c == 0 && !b.Inclusive {
		return b
	}
	return a
}

// explain describes a plan.
func (r *run) explain(s *IndexScan) *Plan {
	p := &Plan{Scan: "full"}
	if s != nil {
		p.Scan, p.Path = "index", s.Path.Path
		switch {
		case len(s.Values) == 1 && s.Lo == nil && s.Hi == nil:
			p.Use = "equality"
		case s.Values != nil:
			p.Use = "in"
		default:
			p.Use = "range"
		}
		switch s.Order {
		case 1:
			p.Order = "asc"
		case -1:
			p.Order = "desc"
		}
	}
	var f []string
	if r.q.Where != nil && !r.whereDone {
		f = append(f, "WHERE")
	}
	if len(r.q.Joins) > 0 {
		f = append(f, "JOIN")
	}
	if len(r.q.OrderBy) > 0 && (s == nil || s.Order == 0) {
		f = append(f, "ORDER BY (sorted in memory)")
	}
	if r.grouped() {
		f = append(f, "GROUP BY and aggregates")
	}
	p.Filter = strings.Join(f, ", ")
	return p
}
