package query

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// env is what an expression is evaluated against: the values bound to the
// query's aliases (slot order), its parameters, and in a grouped query the
// group's aggregate results.
type env struct {
	slots  []any
	params map[string]any
	aggs   []any
	err    error // set by fail: the query must stop
}

func (en *env) eval(e Expr) any {
	switch e := e.(type) {
	case *Literal:
		return e.Value
	case *Param:
		if v, ok := en.params[e.Name]; ok {
			return v
		}
		return undefined
	case *Ref:
		return en.slots[e.Slot]
	case *Member:
		if o, ok := en.eval(e.X).(*Object); ok {
			return o.Get(e.Name)
		}
		return undefined
	case *Index:
		return index(en.eval(e.X), en.eval(e.Index))
	case *Unary:
		x := en.eval(e.X)
		switch e.Op {
		case "NOT":
			if b, ok := x.(bool); ok {
				return !b
			}
		case "-":
			if f, ok := x.(float64); ok {
				return -f
			}
		case "+":
			if f, ok := x.(float64); ok {
				return f
			}
		}
		return undefined
	case *Binary:
		return en.binary(e)
	case *Between:
		x := en.eval(e.X)
		r := and(compare(">=", x, en.eval(e.Lo)), compare("<=", x, en.eval(e.Hi)))
		if e.Not {
			return not(r)
		}
		return r
	case *In:
		// x IN (a, b) is x = a OR x = b.
		x := en.eval(e.X)
		var r any = false
		for _, le := range e.List {
			if r = or(r, compare("=", x, en.eval(le))); r == true {
				break
			}
		}
		if e.Not {
			return not(r)
		}
		return r
	case *Cond:
		if c, ok := en.eval(e.C).(bool); ok && c {
			return en.eval(e.A)
		}
		return en.eval(e.B)
	case *Call:
		if e.agg >= 0 {
			return en.aggs[e.agg]
		}
		args := make([]any, len(e.Args))
		for i, a := range e.Args {
			args[i] = en.eval(a)
		}
		if e.Name == "CONCAT" {
			n := 0
			for _, a := range args {
				if s, ok := a.(string); ok {
					n += len(s)
				}
			}
			if n > MaxValueBytes {
				return en.tooLarge()
			}
		}
		return callFunc(e.Name, args)
	case *ArrayLit:
		a := make([]any, 0, len(e.Elems))
		for _, x := range e.Elems {
			if v := en.eval(x); !isUndefined(v) {
				a = append(a, v)
			}
		}
		return en.bounded(a)
	case *ObjectLit:
		// The parser refused duplicate keys.
		o := &Object{Keys: make([]string, 0, len(e.Keys)), Vals: make([]any, 0, len(e.Keys))}
		for i, k := range e.Keys {
			if v := en.eval(e.Vals[i]); !isUndefined(v) {
				o.Keys = append(o.Keys, k)
				o.Vals = append(o.Vals, v)
			}
		}
		return en.bounded(o)
	}
	return undefined
}

// MaxValueBytes bounds the encoded size of a value a query builds (array
// and object literals, concatenations, projections, group keys): past it
// the query fails with ErrTooLarge.
const MaxValueBytes = 16 << 20

// fail records the first error of an evaluation; the row loop returns it.
func (en *env) fail(err error) {
	if en.err == nil {
		en.err = err
	}
}

func (en *env) tooLarge() any {
	en.fail(fmt.Errorf("%w: a value built by the query is over %d bytes", ErrTooLarge, MaxValueBytes))
	return undefined
}

// bounded returns v, or undefined (and fails the query) when v is over
// MaxValueBytes encoded.
func (en *env) bounded(v any) any {
	if sizeOf(v, MaxValueBytes) > MaxValueBytes {
		return en.tooLarge()
	}
	return v
}

// sizeOf is about the encoded size of v; it stops counting past limit.
func sizeOf(v any, limit int) int {
	switch v := v.(type) {
	case string:
		return len(v) + 2
	case []any:
		n := 2
		for _, e := range v {
			n += sizeOf(e, limit-n) + 1
			if n > limit {
				return n
			}
		}
		return n
	case *Object:
		n := 2
		for i, k := range v.Keys {
			n += len(k) + 4 + sizeOf(v.Vals[i], limit-n)
			if n > limit {
				return n
			}
		}
		return n
	}
	return 24
}

func index(x, i any) any {
	switch x := x.(type) {
	case *Object:
		if s, ok := i.(string); ok {
			return x.Get(s)
		}
	case []any:
		if f, ok := i.(float64); ok && f >= 0 && f == math.Trunc(f) && f < float64(len(x)) {
			return x[int(f)]
		}
	}
	return undefined
}

func (en *env) binary(e *Binary) any {
	switch e.Op {
	case "AND":
		l := en.eval(e.L)
		if b, ok := l.(bool); ok && !b {
			return false // short circuit: false AND anything is false
		}
		return and(l, en.eval(e.R))
	case "OR":
		l := en.eval(e.L)
		if b, ok := l.(bool); ok && b {
			return true
		}
		return or(l, en.eval(e.R))
	case "??":
		if l := en.eval(e.L); !isUndefined(l) {
			return l
		}
		return en.eval(e.R)
	}
	l, r := en.eval(e.L), en.eval(e.R)
	switch e.Op {
	case "=", "!=", "<", "<=", ">", ">=":
		return compare(e.Op, l, r)
	case "||":
		ls, ok1 := l.(string)
		rs, ok2 := r.(string)
		if ok1 && ok2 {
			if len(ls)+len(rs) > MaxValueBytes {
				return en.tooLarge()
			}
			return ls + rs
		}
		return undefined
	}
	lf, ok1 := l.(float64)
	rf, ok2 := r.(float64)
	if !ok1 || !ok2 {
		return undefined
	}
	var v float64
	switch e.Op {
	case "+":
		v = lf + rf
	case "-":
		v = lf - rf
	case "*":
		v = lf * rf
	case "/":
		if rf == 0 {
			return undefined
		}
		v = lf / rf
	case "%":
		if rf == 0 {
			return undefined
		}
		v = math.Mod(lf, rf)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return undefined
	}
	return v
}

// and, or and not are Cosmos DB's three-valued logic: anything but a
// boolean counts as undefined.
func and(l, r any) any {
	lb, lok := l.(bool)
	rb, rok := r.(bool)
	if lok && !lb || rok && !rb {
		return false
	}
	if lok && rok {
		return true
	}
	return undefined
}

func or(l, r any) any {
	lb, lok := l.(bool)
	rb, rok := r.(bool)
	if lok && lb || rok && rb {
		return true
	}
	if lok && rok {
		return false
	}
	return undefined
}

func not(x any) any {
	if b, ok := x.(bool); ok {
		return !b
	}
	return undefined
}

// compare applies a comparison operator with Cosmos DB's rules: undefined
// when either side is undefined or the types differ; = and != compare
// arrays and objects deeply; the range operators are undefined for them.
func compare(op string, l, r any) any {
	if isUndefined(l) || isUndefined(r) {
		return undefined
	}
	rl, rr := rank(l), rank(r)
	if rl != rr {
		return undefined
	}
	switch op {
	case "=":
		return equal(l, r)
	case "!=":
		return !equal(l, r)
	}
	if rl == rankArray || rl == rankObject {
		return undefined
	}
	c := compareOrder(l, r)
	switch op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return undefined
}

// The built-in functions (docs/queries.md lists them).
const manyArgs = 1 << 10

var funcArity = map[string][2]int{
	"IS_DEFINED": {1, 1}, "IS_NULL": {1, 1}, "IS_NUMBER": {1, 1}, "IS_STRING": {1, 1},
	"IS_BOOL": {1, 1}, "IS_ARRAY": {1, 1}, "IS_OBJECT": {1, 1}, "IS_PRIMITIVE": {1, 1},
	"ARRAY_CONTAINS": {2, 3}, "ARRAY_LENGTH": {1, 1},
	"STARTSWITH": {2, 3}, "ENDSWITH": {2, 3}, "CONTAINS": {2, 3},
	"LOWER": {1, 1}, "UPPER": {1, 1}, "LENGTH": {1, 1}, "SUBSTRING": {3, 3}, "CONCAT": {2, manyArgs},
	"ABS": {1, 1}, "FLOOR": {1, 1}, "CEILING": {1, 1}, "ROUND": {1, 1},
	"COUNT": {1, 1}, "SUM": {1, 1}, "MIN": {1, 1}, "MAX": {1, 1}, "AVG": {1, 1},
}

func arity(name string) (int, int, bool) {
	a, ok := funcArity[name]
	return a[0], a[1], ok
}

func isAggregate(name string) bool {
	switch name {
	case "COUNT", "SUM", "MIN", "MAX", "AVG":
		return true
	}
	return false
}

func callFunc(name string, a []any) any {
	switch name {
	case "IS_DEFINED":
		return !isUndefined(a[0])
	case "IS_NULL":
		return a[0] == nil
	case "IS_NUMBER":
		return rank(a[0]) == rankNumber
	case "IS_STRING":
		return rank(a[0]) == rankString
	case "IS_BOOL":
		return rank(a[0]) == rankBool
	case "IS_ARRAY":
		return rank(a[0]) == rankArray
	case "IS_OBJECT":
		return rank(a[0]) == rankObject
	case "IS_PRIMITIVE":
		r := rank(a[0])
		return r >= rankNull && r <= rankString
	case "ARRAY_LENGTH":
		if arr, ok := a[0].([]any); ok {
			return float64(len(arr))
		}
		return undefined
	case "ARRAY_CONTAINS":
		arr, ok := a[0].([]any)
		if !ok {
			return undefined
		}
		partial := false
		if len(a) == 3 {
			b, ok := a[2].(bool)
			if !ok {
				return undefined
			}
			partial = b
		}
		if isUndefined(a[1]) {
			return false
		}
		for _, e := range arr {
			if equal(e, a[1]) || partial && partialMatch(e, a[1]) {
				return true
			}
		}
		return false
	case "STARTSWITH", "ENDSWITH", "CONTAINS":
		s, ok1 := a[0].(string)
		sub, ok2 := a[1].(string)
		if !ok1 || !ok2 {
			return undefined
		}
		if len(a) == 3 {
			ic, ok := a[2].(bool)
			if !ok {
				return undefined
			}
			if ic {
				s, sub = strings.ToLower(s), strings.ToLower(sub)
			}
		}
		switch name {
		case "STARTSWITH":
			return strings.HasPrefix(s, sub)
		case "ENDSWITH":
			return strings.HasSuffix(s, sub)
		}
		return strings.Contains(s, sub)
	case "LOWER", "UPPER", "LENGTH":
		s, ok := a[0].(string)
		if !ok {
			return undefined
		}
		switch name {
		case "LOWER":
			return strings.ToLower(s)
		case "UPPER":
			return strings.ToUpper(s)
		}
		return float64(utf8.RuneCountInString(s))
	case "SUBSTRING":
		s, ok1 := a[0].(string)
		start, ok2 := a[1].(float64)
		n, ok3 := a[2].(float64)
		if !ok1 || !ok2 || !ok3 {
			return undefined
		}
		r := []rune(s)
		st := clampInt(start, len(r))
		end := clampInt(float64(st)+math.Max(n, 0), len(r))
		return string(r[st:end])
	case "CONCAT":
		var sb strings.Builder
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return undefined
			}
			sb.WriteString(s)
		}
		return sb.String()
	case "ABS", "FLOOR", "CEILING", "ROUND":
		f, ok := a[0].(float64)
		if !ok {
			return undefined
		}
		switch name {
		case "ABS":
			return math.Abs(f)
		case "FLOOR":
			return math.Floor(f)
		case "CEILING":
			return math.Ceil(f)
		}
		return math.Round(f) // half away from zero, as Cosmos DB's ROUND
	}
	return undefined
}

func clampInt(f float64, n int) int {
	switch {
	case f <= 0 || math.IsNaN(f):
		return 0
	case f >= float64(n):
		return n
	}
	return int(f)
}

// partialMatch is ARRAY_CONTAINS's partial match: an object element that
// has every property of want with an equal value.
func partialMatch(e, want any) bool {
	eo, ok1 := e.(*Object)
	wo, ok2 := want.(*Object)
	if !ok1 || !ok2 {
		return false
	}
	for i, k := range wo.Keys {
		if v := eo.Get(k); isUndefined(v) || !equal(v, wo.Vals[i]) {
			return false
		}
	}
	return true
}

// accumulator computes one aggregate over a group's rows.
type accumulator struct {
	name  string
	count int
	sum   float64
	bad   bool // SUM/AVG met a defined value that is not a number
	best  any  // MIN/MAX so far; undefined until the first value
}

func newAccumulator(name string) *accumulator {
	return &accumulator{name: name, best: undefined}
}

func (a *accumulator) add(v any) {
	if isUndefined(v) {
		return
	}
	switch a.name {
	case "COUNT":
		a.count++
	case "SUM", "AVG":
		f, ok := v.(float64)
		if !ok {
			a.bad = true
			return
		}
		a.sum += f
		a.count++
	case "MIN", "MAX":
		if r := rank(v); r == rankArray || r == rankObject {
			return
		}
		if isUndefined(a.best) {
			a.best = v
			return
		}
		c := compareOrder(v, a.best)
		if a.name == "MIN" && c < 0 || a.name == "MAX" && c > 0 {
			a.best = v
		}
	}
}

func (a *accumulator) result() any {
	switch a.name {
	case "COUNT":
		return float64(a.count)
	case "SUM":
		if a.bad {
			return undefined
		}
		return a.sum
	case "AVG":
		if a.bad || a.count == 0 {
			return undefined
		}
		return a.sum / float64(a.count)
	}
	return a.best
}
