package query

// Query is a parsed query.
type Query struct {
	Distinct bool
	Top      Expr // nil: none; a number literal or a parameter
	Value    bool // SELECT VALUE
	Star     bool // SELECT *
	Items    []SelectItem
	// From is nil for a query without FROM (one row, no document).
	From    *From
	Joins   []Join
	Where   Expr
	GroupBy []Expr
	OrderBy []OrderItem
	Offset  Expr // with Limit; a number literal or a parameter
	Limit   Expr

	// aliases are the names bound by FROM and JOIN, in slot order.
	aliases []string
	// aggregates are the aggregate calls of the SELECT clause, each with
	// its slot in a group's accumulators.
	aggregates []*Call
	// params are the parameter names the query uses, each with the column
	// of its first use.
	params map[string]int
}

// SelectItem is one projection: an expression and the property it goes to.
type SelectItem struct {
	Expr Expr
	Name string // the alias, or the name derived from the expression
}

// From is the FROM clause: `FROM c`, `FROM c.path [AS] a` or
// `FROM a IN c.path`. Expr is the source path (nil: the document itself);
// with In, each element of the array it yields is a row.
type From struct {
	Alias string
	Expr  Expr // over the document (slot 0 is the document while it runs)
	In    bool
}

// Join is `JOIN a IN expr`: each row meets each element of the array.
type Join struct {
	Alias string
	Expr  Expr
}

// OrderItem is one ORDER BY key.
type OrderItem struct {
	Expr Expr
	Desc bool
}

// Expr is an expression node.
type Expr interface{ column() int }

type (
	// Literal is a constant; Value is a query value (see value.go).
	Literal struct {
		Col   int
		Value any
	}
	// Param is @name.
	Param struct {
		Col  int
		Name string
	}
	// Ref is an alias bound by FROM or JOIN; Slot is its index.
	Ref struct {
		Col  int
		Name string
		Slot int
	}
	// Member is X.Name; Col is where X begins, as for Index.
	Member struct {
		Col  int
		X    Expr
		Name string
	}
	// Index is X[Index].
	Index struct {
		Col   int
		X     Expr
		Index Expr
	}
	// Unary is -X, +X or NOT X.
	Unary struct {
		Col int
		Op  string
		X   Expr
	}
	// Binary is L op R: arithmetic, comparison, AND, OR, ||, ??.
	Binary struct {
		Col  int
		Op   string
		L, R Expr
	}
	// Between is X [NOT] BETWEEN Lo AND Hi.
	Between struct {
		Col       int
		X, Lo, Hi Expr
		Not       bool
	}
	// In is X [NOT] IN (List...).
	In struct {
		Col  int
		X    Expr
		List []Expr
		Not  bool
	}
	// Cond is C ? A : B.
	Cond struct {
		Col     int
		C, A, B Expr
	}
	// Call is a built-in function or an aggregate; Name is upper-case.
	Call struct {
		Col  int
		Name string
		Args []Expr
		agg  int // slot of an aggregate in its group; -1 otherwise
	}
	// ArrayLit is [a, b, ...].
	ArrayLit struct {
		Col   int
		Elems []Expr
	}
	// ObjectLit is {"k": v, ...}.
	ObjectLit struct {
		Col  int
		Keys []string
		Vals []Expr
	}
)

func (e *Literal) column() int   { return e.Col }
func (e *Param) column() int     { return e.Col }
func (e *Ref) column() int       { return e.Col }
func (e *Member) column() int    { return e.Col }
func (e *Index) column() int     { return e.Col }
func (e *Unary) column() int     { return e.Col }
func (e *Binary) column() int    { return e.Col }
func (e *Between) column() int   { return e.Col }
func (e *In) column() int        { return e.Col }
func (e *Cond) column() int      { return e.Col }
func (e *Call) column() int      { return e.Col }
func (e *ArrayLit) column() int  { return e.Col }
func (e *ObjectLit) column() int { return e.Col }
