package query

import (
	"fmt"
	"strings"
)

// check resolves aliases and checks what the grammar alone cannot: where
// aggregates may appear, SELECT * with JOIN, and GROUP BY projections.
func (p *parser) check() error {
	q := p.q
	if q.Star && len(q.Joins) > 0 {
		return errorAt(1, "SELECT * needs a single input: with JOIN, name what to select")
	}
	if q.Star && q.From == nil {
		return errorAt(1, "SELECT * needs a FROM clause")
	}
	// FROM's source path is over the document, which is slot 0 while it
	// runs; its root name is the container's, whatever it is called.
	for i, j := range q.Joins {
		if err := q.resolve(j.Expr, false); err != nil {
			return err
		}
		// A JOIN reads the aliases bound before it: FROM's and earlier
		// JOINs' (slots 0 to i), not its own or later ones.
		var err error
		walk(j.Expr, func(e Expr) bool {
			if r, ok := e.(*Ref); ok && r.Slot > i && err == nil {
				err = errorAt(r.Col, "alias %q is used before its JOIN", r.Name)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	for _, it := range q.Items {
		if err := q.resolve(it.Expr, true); err != nil {
			return err
		}
	}
	for _, e := range q.GroupBy {
		if err := q.resolve(e, false); err != nil {
			return err
		}
	}
	if q.Where != nil {
		if err := q.resolve(q.Where, false); err != nil {
			return err
		}
	}
	for _, o := range q.OrderBy {
		if err := q.resolve(o.Expr, false); err != nil {
			return err
		}
	}
	for _, it := range q.Items {
		collectAggregates(it.Expr, &q.aggregates)
	}
	if len(q.aggregates) > 0 || len(q.GroupBy) > 0 {
		if len(q.OrderBy) > 0 {
			return errorAt(q.OrderBy[0].Expr.column(), "ORDER BY with GROUP BY or aggregates is not supported")
		}
		if q.Star {
			return errorAt(1, "SELECT * cannot be used with GROUP BY or aggregates")
		}
		keys := map[string]bool{}
		for _, e := range q.GroupBy {
			keys[exprKey(e)] = true
		}
		for _, it := range q.Items {
			if err := checkGrouped(it.Expr, keys, len(q.GroupBy) > 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve binds each Ref to its alias slot. Aggregates are allowed only
// where allowAgg is set (the SELECT clause).
func (q *Query) resolve(e Expr, allowAgg bool) error {
	var err error
	walk(e, func(e Expr) bool {
		if err != nil {
			return false
		}
		switch e := e.(type) {
		case *Ref:
			e.Slot = -1
			for i, a := range q.aliases {
				if a == e.Name {
					e.Slot = i
				}
			}
			if e.Slot < 0 {
				if len(q.aliases) == 0 {
					err = errorAt(e.Col, "identifier %q cannot be resolved: the query has no FROM clause", e.Name)
				} else {
					err = errorAt(e.Col, "identifier %q cannot be resolved: the query's aliases are %s", e.Name, strings.Join(q.aliases, ", "))
				}
			}
		case *Call:
			if isAggregate(e.Name) && !allowAgg {
				err = errorAt(e.Col, "aggregate %s is only allowed in the SELECT clause", e.Name)
			}
		}
		return true
	})
	return err
}

func collectAggregates(e Expr, out *[]*Call) {
	walk(e, func(e Expr) bool {
		if c, ok := e.(*Call); ok && isAggregate(c.Name) {
			c.agg = len(*out)
			*out = append(*out, c)
			return false
		}
		return true
	})
}

// checkGrouped checks that a projection of a grouped query reads documents
// only through aggregates or GROUP BY expressions.
func checkGrouped(e Expr, keys map[string]bool, grouped bool) error {
	if c, ok := e.(*Call); ok && isAggregate(c.Name) {
		return nil
	}
	if keys[exprKey(e)] {
		return nil
	}
	switch e.(type) {
	case *Ref, *Member, *Index:
		if grouped {
			return errorAt(e.column(), "%s is neither in GROUP BY nor inside an aggregate", exprKey(e))
		}
		return errorAt(e.column(), "%s must be inside an aggregate when the SELECT list has aggregates (or use GROUP BY)", exprKey(e))
	}
	var err error
	children(e, func(c Expr) {
		if err == nil {
			err = checkGrouped(c, keys, grouped)
		}
	})
	return err
}

// walk calls fn on e and, while fn returns true, on its children.
func walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	children(e, func(c Expr) { walk(c, fn) })
}

func children(e Expr, fn func(Expr)) {
	switch e := e.(type) {
	case *Member:
		fn(e.X)
	case *Index:
		fn(e.X)
		fn(e.Index)
	case *Unary:
		fn(e.X)
	case *Binary:
		fn(e.L)
		fn(e.R)
	case *Between:
		fn(e.X)
		fn(e.Lo)
		fn(e.Hi)
	case *In:
		fn(e.X)
		for _, x := range e.List {
			fn(x)
		}
	case *Cond:
		fn(e.C)
		fn(e.A)
		fn(e.B)
	case *Call:
		for _, x := range e.Args {
			fn(x)
		}
	case *ArrayLit:
		for _, x := range e.Elems {
			fn(x)
		}
	case *ObjectLit:
		for _, x := range e.Vals {
			fn(x)
		}
	}
}

// exprKey is a canonical text of an expression, to compare SELECT items
// with GROUP BY expressions and to name them in errors.
func exprKey(e Expr) string {
	switch e := e.(type) {
	case *Literal:
		return string(appendJSON(nil, e.Value))
	case *Param:
		return e.Name
	case *Ref:
		return e.Name
	case *Member:
		return exprKey(e.X) + "." + e.Name
	case *Index:
		return exprKey(e.X) + "[" + exprKey(e.Index) + "]"
	case *Unary:
		return e.Op + " " + exprKey(e.X)
	case *Binary:
		return "(" + exprKey(e.L) + " " + e.Op + " " + exprKey(e.R) + ")"
	case *Call:
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			args[i] = exprKey(a)
		}
		return e.Name + "(" + strings.Join(args, ", ") + ")"
	}
	return fmt.Sprintf("%T@%d", e, e.column())
}
