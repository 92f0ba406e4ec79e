package query

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what a query may ask for. The zero value of each field is its
// default (docs/queries.md, Limits).
type Limits struct {
	MaxQueryLength int // bytes of query text; default 256 KiB
	MaxDepth       int // nesting of expressions; default 64
	MaxParams      int // parameters of one request; default 100
}

// Defaults of Limits and of Options.
const (
	DefaultMaxQueryLength = 256 << 10
	DefaultMaxDepth       = 64
	DefaultMaxParams      = 100
)

func (l Limits) withDefaults() Limits {
	if l.MaxQueryLength <= 0 {
		l.MaxQueryLength = DefaultMaxQueryLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxParams <= 0 {
		l.MaxParams = DefaultMaxParams
	}
	return l
}

// Parse parses query text with the default limits.
func Parse(src string) (*Query, error) { return ParseLimits(src, Limits{}) }

// ParseLimits parses query text. A bad query is an *Error (ErrBadQuery)
// carrying the column where the fault was found.
func ParseLimits(src string, lim Limits) (*Query, error) {
	lim = lim.withDefaults()
	if len(src) > lim.MaxQueryLength {
		return nil, &Error{Msg: fmt.Sprintf("query text is %d bytes, more than the limit of %d", len(src), lim.MaxQueryLength)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Msg: "query text is not valid UTF-8"}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, maxDepth: lim.MaxDepth, q: &Query{params: map[string]int{}}}
	if err := p.query(); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.q, nil
}

type parser struct {
	toks     []token
	pos      int
	depth    int
	maxDepth int
	q        *Query
	inAgg    bool
}

func (p *parser) tok() token { return p.toks[p.pos] }

// useParam records a parameter and the column where it is first used.
func (p *parser) useParam(t token) {
	if _, ok := p.q.params[t.text]; !ok {
		p.q.params[t.text] = t.col
	}
}

func (p *parser) isKw(kw string) bool {
	t := p.tok()
	return t.kind == tokKeyword && t.text == kw
}

func (p *parser) isPunct(s string) bool {
	t := p.tok()
	return t.kind == tokPunct && t.text == s
}

func (p *parser) acceptKw(kw string) bool {
	if p.isKw(kw) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) acceptPunct(s string) bool {
	if p.isPunct(s) {
		p.pos++
		return true
	}
	return false
}

func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of query"
	case tokString:
		return strconv.Quote(t.text)
	case tokNumber:
		return t.text
	}
	return "'" + t.text + "'"
}

func (p *parser) expected(what string) error {
	t := p.tok()
	return errorAt(t.col, "expected %s, found %s", what, describe(t))
}

func (p *parser) expectKw(kw string) error {
	if !p.acceptKw(kw) {
		return p.expected(kw)
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if !p.acceptPunct(s) {
		return p.expected("'" + s + "'")
	}
	return nil
}

func (p *parser) ident(what string) (token, error) {
	t := p.tok()
	if t.kind != tokIdent {
		return t, p.expected(what)
	}
	p.pos++
	return t, nil
}

func (p *parser) query() error {
	q := p.q
	if err := p.expectKw("SELECT"); err != nil {
		return err
	}
	q.Distinct = p.acceptKw("DISTINCT")
	if p.acceptKw("TOP") {
		n, err := p.count("TOP")
		if err != nil {
			return err
		}
		q.Top = n
	}
	switch {
	case p.acceptKw("VALUE"):
		q.Value = true
		e, err := p.expr()
		if err != nil {
			return err
		}
		q.Items = []SelectItem{{Expr: e}}
	case p.isPunct("*"):
		q.Star = true
		p.pos++
	default:
		unnamed := 0
		seen := map[string]bool{}
		for {
			e, err := p.expr()
			if err != nil {
				return err
			}
			it := SelectItem{Expr: e}
			if p.acceptKw("AS") {
				t, err := p.ident("an alias after AS")
				if err != nil {
					return err
				}
				it.Name = t.text
			} else if t := p.tok(); t.kind == tokIdent {
				p.pos++
				it.Name = t.text
			} else {
				it.Name = derivedName(e)
				if it.Name == "" {
					unnamed++
					it.Name = "$" + strconv.Itoa(unnamed)
				}
			}
			if seen[it.Name] {
				return errorAt(e.column(), "duplicate property name %q in the SELECT list; give one an alias", it.Name)
			}
			seen[it.Name] = true
			q.Items = append(q.Items, it)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if p.acceptKw("FROM") {
		if err := p.from(); err != nil {
			return err
		}
		for p.isKw("JOIN") {
			p.pos++
			if err := p.join(); err != nil {
				return err
			}
		}
	}
	if p.acceptKw("WHERE") {
		e, err := p.expr()
		if err != nil {
			return err
		}
		q.Where = e
	}
	if p.acceptKw("GROUP") {
		if err := p.expectKw("BY"); err != nil {
			return err
		}
		var err error
		if q.GroupBy, err = p.exprs(); err != nil {
			return err
		}
	}
	if p.acceptKw("ORDER") {
		if err := p.expectKw("BY"); err != nil {
			return err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return err
			}
			it := OrderItem{Expr: e}
			if p.acceptKw("DESC") {
				it.Desc = true
			} else {
				p.acceptKw("ASC")
			}
			q.OrderBy = append(q.OrderBy, it)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if p.isKw("OFFSET") {
		col := p.tok().col
		p.pos++
		n, err := p.count("OFFSET")
		if err != nil {
			return err
		}
		if err := p.expectKw("LIMIT"); err != nil {
			return err
		}
		m, err := p.count("LIMIT")
		if err != nil {
			return err
		}
		if q.Top != nil {
			return errorAt(col, "TOP and OFFSET LIMIT cannot be used together")
		}
		q.Offset, q.Limit = n, m
	}
	if t := p.tok(); t.kind != tokEOF {
		if t.kind == tokKeyword && t.text == "LIMIT" {
			return errorAt(t.col, "LIMIT needs OFFSET before it (OFFSET 0 LIMIT n)")
		}
		return p.expected("end of query")
	}
	return nil
}

// count parses the number of TOP, OFFSET or LIMIT: a non-negative integer
// or a parameter.
func (p *parser) count(clause string) (Expr, error) {
	t := p.tok()
	switch t.kind {
	case tokNumber:
		if t.num < 0 || t.num != float64(int64(t.num)) {
			return nil, errorAt(t.col, "%s needs a whole number, found %s", clause, t.text)
		}
		p.pos++
		return &Literal{Col: t.col, Value: t.num}, nil
	case tokParam:
		p.pos++
		p.useParam(t)
		return &Param{Col: t.col, Name: t.text}, nil
	}
	return nil, p.expected("a number or parameter after " + clause)
}

func (p *parser) from() error {
	t, err := p.ident("a name after FROM")
	if err != nil {
		return err
	}
	if p.acceptKw("IN") {
		// FROM a IN c.items: the container alias is the path's root.
		src, err := p.sourcePath()
		if err != nil {
			return err
		}
		p.q.From = &From{Alias: t.text, Expr: src, In: true}
		p.q.aliases = append(p.q.aliases, t.text)
		return nil
	}
	// FROM c, FROM c AS x, FROM c x, FROM c.path x: the first name is the
	// container (any name); the alias defaults to it.
	var path Expr = &Ref{Col: t.col, Name: t.text, Slot: 0}
	hasPath := false
	for p.isPunct(".") || p.isPunct("[") {
		hasPath = true
		if path, err = p.postfixOne(path); err != nil {
			return err
		}
	}
	alias := t.text
	if p.acceptKw("AS") {
		a, err := p.ident("an alias after AS")
		if err != nil {
			return err
		}
		alias = a.text
	} else if a := p.tok(); a.kind == tokIdent {
		p.pos++
		alias = a.text
	}
	f := &From{Alias: alias}
	if hasPath {
		f.Expr = path
	}
	p.q.From = f
	p.q.aliases = append(p.q.aliases, alias)
	return nil
}

// sourcePath parses the path of FROM a IN path: any root name (the
// container), then members and indexes.
func (p *parser) sourcePath() (Expr, error) {
	t, err := p.ident("a path after IN")
	if err != nil {
		return nil, err
	}
	var e Expr = &Ref{Col: t.col, Name: t.text, Slot: 0}
	for p.isPunct(".") || p.isPunct("[") {
		if e, err = p.postfixOne(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (p *parser) join() error {
	paren := p.acceptPunct("(")
	t, err := p.ident("a name after JOIN")
	if err != nil {
		return err
	}
	if err := p.expectKw("IN"); err != nil {
		return err
	}
	e, err := p.expr()
	if err != nil {
		return err
	}
	if paren {
		if err := p.expectPunct(")"); err != nil {
			return err
		}
	}
	for _, a := range p.q.aliases {
		if a == t.text {
			return errorAt(t.col, "alias %q is already bound", t.text)
		}
	}
	p.q.Joins = append(p.q.Joins, Join{Alias: t.text, Expr: e})
	p.q.aliases = append(p.q.aliases, t.text)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > p.maxDepth {
		return errorAt(p.tok().col, "expression nested deeper than the limit of %d", p.maxDepth)
	}
	return nil
}

func (p *parser) expr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	c, err := p.coalesce()
	if err != nil {
		return nil, err
	}
	if t := p.tok(); p.acceptPunct("?") {
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectPunct(":"); err != nil {
			return nil, err
		}
		b, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &Cond{Col: t.col, C: c, A: a, B: b}, nil
	}
	return c, nil
}

func (p *parser) coalesce() (Expr, error) {
	l, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.tok(); p.acceptPunct("??") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		r, err := p.coalesce()
		if err != nil {
			return nil, err
		}
		return &Binary{Col: t.col, Op: "??", L: l, R: r}, nil
	}
	return l, nil
}

// exprs parses one or more expressions separated by commas.
func (p *parser) exprs() ([]Expr, error) {
	var list []Expr
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		if !p.acceptPunct(",") {
			return list, nil
		}
	}
}

// leftAssoc parses operand (op operand)* into left-associative binary
// expressions; op reports the operator at the current token, if any.
func (p *parser) leftAssoc(operand func() (Expr, error), op func() (string, bool)) (Expr, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for {
		name, ok := op()
		if !ok {
			return l, nil
		}
		col := p.tok().col
		p.pos++
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = &Binary{Col: col, Op: name, L: l, R: r}
	}
}

// keyword matches the keyword kw as an operator.
func (p *parser) keyword(kw string) func() (string, bool) {
	return func() (string, bool) { return kw, p.isKw(kw) }
}

// punct matches any of ops as an operator.
func (p *parser) punct(ops ...string) func() (string, bool) {
	return func() (string, bool) {
		for _, o := range ops {
			if p.isPunct(o) {
				return o, true
			}
		}
		return "", false
	}
}

func (p *parser) or() (Expr, error) { return p.leftAssoc(p.and, p.keyword("OR")) }

func (p *parser) and() (Expr, error) { return p.leftAssoc(p.not, p.keyword("AND")) }

func (p *parser) not() (Expr, error) {
	if t := p.tok(); p.acceptKw("NOT") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &Unary{Col: t.col, Op: "NOT", X: x}, nil
	}
	return p.comparison()
}

var comparisonOps = map[string]string{"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}

func (p *parser) comparison() (Expr, error) {
	l, err := p.concat()
	if err != nil {
		return nil, err
	}
	t := p.tok()
	if t.kind == tokPunct {
		if op, ok := comparisonOps[t.text]; ok {
			p.pos++
			r, err := p.concat()
			if err != nil {
				return nil, err
			}
			return &Binary{Col: t.col, Op: op, L: l, R: r}, nil
		}
	}
	not := false
	if p.isKw("NOT") {
		if n := p.toks[p.pos+1]; n.kind == tokKeyword && (n.text == "BETWEEN" || n.text == "IN" || n.text == "LIKE") {
			not = true
			p.pos++
		}
	}
	t = p.tok()
	switch {
	case p.acceptKw("BETWEEN"):
		lo, err := p.concat()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND"); err != nil {
			return nil, err
		}
		hi, err := p.concat()
		if err != nil {
			return nil, err
		}
		return &Between{Col: t.col, X: l, Lo: lo, Hi: hi, Not: not}, nil
	case p.acceptKw("IN"):
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		list, err := p.exprs()
		if err != nil {
			return nil, err
		}
		in := &In{Col: t.col, X: l, Not: not, List: list}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
		return in, nil
	case p.isKw("LIKE"):
		return nil, errorAt(t.col, "LIKE is not supported (use STARTSWITH, ENDSWITH or CONTAINS)")
	}
	return l, nil
}

func (p *parser) concat() (Expr, error) { return p.leftAssoc(p.additive, p.punct("||")) }

func (p *parser) additive() (Expr, error) { return p.leftAssoc(p.multiplicative, p.punct("+", "-")) }

func (p *parser) multiplicative() (Expr, error) {
	return p.leftAssoc(p.unary, p.punct("*", "/", "%"))
}

func (p *parser) unary() (Expr, error) {
	t := p.tok()
	if p.acceptPunct("-") || p.acceptPunct("+") {
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if lit, ok := x.(*Literal); ok && t.text == "-" {
			if f, ok := lit.Value.(float64); ok {
				return &Literal{Col: t.col, Value: -f}, nil
			}
		}
		return &Unary{Col: t.col, Op: t.text, X: x}, nil
	}
	if p.isKw("NOT") {
		return p.not()
	}
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.isPunct(".") || p.isPunct("[") {
		if x, err = p.postfixOne(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// postfixOne parses one .name or [expr] after x.
func (p *parser) postfixOne(x Expr) (Expr, error) {
	if p.acceptPunct(".") {
		n := p.tok()
		if n.kind != tokIdent && n.kind != tokKeyword {
			return nil, p.expected("a property name after '.'")
		}
		p.pos++
		name := n.text
		if n.kind == tokKeyword {
			// Keywords are upper-cased by the lexer; a property keeps
			// the spelling of the text.
			name = n.raw
		}
		return &Member{Col: x.column(), X: x, Name: name}, nil
	}
	p.pos++ // '['
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	idx, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct("]"); err != nil {
		return nil, err
	}
	return &Index{Col: x.column(), X: x, Index: idx}, nil
}

func (p *parser) primary() (Expr, error) {
	t := p.tok()
	switch t.kind {
	case tokNumber:
		p.pos++
		return &Literal{Col: t.col, Value: t.num}, nil
	case tokString:
		p.pos++
		return &Literal{Col: t.col, Value: t.text}, nil
	case tokParam:
		p.pos++
		p.useParam(t)
		return &Param{Col: t.col, Name: t.text}, nil
	case tokKeyword:
		switch t.text {
		case "TRUE":
			p.pos++
			return &Literal{Col: t.col, Value: true}, nil
		case "FALSE":
			p.pos++
			return &Literal{Col: t.col, Value: false}, nil
		case "NULL":
			p.pos++
			return &Literal{Col: t.col, Value: nil}, nil
		case "UNDEFINED":
			p.pos++
			return &Literal{Col: t.col, Value: undefined}, nil
		case "EXISTS", "ARRAY", "SELECT":
			return nil, errorAt(t.col, "subqueries (%s) are not supported", t.text)
		}
		return nil, p.expected("an expression")
	case tokIdent:
		p.pos++
		if p.isPunct("(") {
			return p.call(t)
		}
		if p.isPunct(".") && strings.EqualFold(t.text, "udf") {
			return nil, errorAt(t.col, "user-defined functions are not supported")
		}
		return &Ref{Col: t.col, Name: t.text, Slot: -1}, nil
	case tokPunct:
		switch t.text {
		case "(":
			p.pos++
			if p.isKw("SELECT") {
				return nil, errorAt(p.tok().col, "subqueries are not supported")
			}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			p.pos++
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer func() { p.depth-- }()
			a := &ArrayLit{Col: t.col}
			if !p.acceptPunct("]") {
				var err error
				if a.Elems, err = p.exprs(); err != nil {
					return nil, err
				}
				if err := p.expectPunct("]"); err != nil {
					return nil, err
				}
			}
			return a, nil
		case "{":
			p.pos++
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer func() { p.depth-- }()
			o := &ObjectLit{Col: t.col}
			seen := map[string]bool{}
			if !p.acceptPunct("}") {
				for {
					k := p.tok()
					if k.kind != tokString && k.kind != tokIdent {
						return nil, p.expected("a property name")
					}
					p.pos++
					if err := p.expectPunct(":"); err != nil {
						return nil, err
					}
					v, err := p.expr()
					if err != nil {
						return nil, err
					}
					if seen[k.text] {
						return nil, errorAt(k.col, "duplicate property %q in an object literal", k.text)
					}
					seen[k.text] = true
					o.Keys = append(o.Keys, k.text)
					o.Vals = append(o.Vals, v)
					if !p.acceptPunct(",") {
						break
					}
				}
				if err := p.expectPunct("}"); err != nil {
					return nil, err
				}
			}
			return o, nil
		}
	}
	return nil, p.expected("an expression")
}

func (p *parser) call(name token) (Expr, error) {
	fname := strings.ToUpper(name.text)
	p.pos++ // '('
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	c := &Call{Col: name.col, Name: fname, agg: -1}
	agg := isAggregate(fname)
	if agg {
		if p.inAgg {
			return nil, errorAt(name.col, "aggregate %s inside another aggregate", fname)
		}
		p.inAgg = true
		defer func() { p.inAgg = false }()
	}
	if !p.acceptPunct(")") {
		for {
			if agg && p.isPunct("*") {
				return nil, errorAt(p.tok().col, "%s(*) is not supported: use %s(1)", fname, fname)
			}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			c.Args = append(c.Args, e)
			if !p.acceptPunct(",") {
				break
			}
		}
		if err := p.expectPunct(")"); err != nil {
			return nil, err
		}
	}
	min, max, ok := arity(fname)
	if !ok {
		return nil, errorAt(name.col, "unknown function %s", name.text)
	}
	if len(c.Args) < min || len(c.Args) > max {
		want := strconv.Itoa(min)
		if max > min {
			want += " to " + strconv.Itoa(max)
			if max == manyArgs {
				want = strconv.Itoa(min) + " or more"
			}
		}
		return nil, errorAt(name.col, "%s takes %s arguments, got %d", fname, want, len(c.Args))
	}
	return c, nil
}

// derivedName is the output property of an unaliased projection: the last
// property name of a path, or the alias itself.
func derivedName(e Expr) string {
	switch e := e.(type) {
	case *Member:
		return e.Name
	case *Ref:
		return e.Name
	case *Index:
		if l, ok := e.Index.(*Literal); ok {
			if s, ok := l.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}
