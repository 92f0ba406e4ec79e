package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/replica"
)

// Request is a query as the API takes it.
type Request struct {
	Query        string      `json:"query"`
	Parameters   []Parameter `json:"parameters,omitempty"`
	Limit        int         `json:"limit,omitempty"`        // documents per page; default replica.DefaultPageSize
	Continuation string      `json:"continuation,omitempty"` // from the previous page
	Explain      bool        `json:"explain,omitempty"`      // return the plan beside the page
	// PartitionKey, when set, limits the query to the items with this
	// partition key value: the engine's source reads only those (a Cosmos
	// DB query scoped to one logical partition).
	PartitionKey *string `json:"-"`
}

// Parameter is one @name and its JSON value.
type Parameter struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// Page is one page of a query's result. Continuation is empty on the last.
type Page struct {
	Documents    []json.RawMessage `json:"documents"`
	Continuation string            `json:"continuation,omitempty"`
	Plan         *Plan             `json:"plan,omitempty"` // with Request.Explain
}

// Options bound a query's execution. The zero value of each field is its
// default (docs/queries.md, Limits).
type Options struct {
	Limits
	// MaxPageBytes bounds the encoded documents of one page: a page ends
	// early (with a continuation) once the next document would pass it.
	// Default 4 MiB; a single larger document is still returned alone.
	MaxPageBytes int
	// MaxHeldBytes bounds what ORDER BY, GROUP BY and DISTINCT hold in
	// memory while a query runs (encoded results, sort keys and group
	// keys); past it the query fails with ErrTooLarge. Default 64 MiB.
	MaxHeldBytes int
	// Timeout stops a query that runs longer (ErrTimeout). Default 5s.
	Timeout time.Duration
}

// Defaults of Options.
const (
	DefaultMaxPageBytes = 4 << 20
	DefaultMaxHeldBytes = 64 << 20
	DefaultTimeout      = 5 * time.Second
)

func (o Options) withDefaults() Options {
	o.Limits = o.Limits.withDefaults()
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = DefaultMaxPageBytes
	}
	if o.MaxHeldBytes <= 0 {
		o.MaxHeldBytes = DefaultMaxHeldBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Source calls fn with each document of a container (a JSON object with its
// system properties), always in the same order (by id), until fn returns an
// error, which it returns. It reads through a read-only connection. fn
// does not keep doc after it returns.
type Source func(ctx context.Context, fn func(doc []byte) error) error

// errStop ends a scan early: the page is full.
var errStop = errors.New("stop scan")

// checkEvery is how many rows the evaluator handles between looks at its
// deadline.
const checkEvery = 64

// Execute parses and runs a request over the documents src yields and
// returns one page of the result. Every document is read and evaluated (a
// scan): the cost grows with the container, not with the result.
func Execute(ctx context.Context, req Request, src Source, opt Options) (Page, error) {
	return ExecuteIndexed(ctx, req, src, nil, opt)
}

// ExecuteIndexed is Execute over a source with indexes: when WHERE
// restricts an indexed path (=, IN, a range, BETWEEN), only the documents
// the index selects are read, and the evaluator filters them as it filters
// a scan, so that the result is the scan's, in the same order.
func ExecuteIndexed(ctx context.Context, req Request, src Source, ix *IndexSource, opt Options) (Page, error) {
	opt = opt.withDefaults()
	q, err := parseCached(req.Query, opt.Limits)
	if err != nil {
		return Page{}, err
	}
	params, err := decodeParams(q, req.Parameters, opt.MaxParams)
	if err != nil {
		return Page{}, err
	}
	pageLimit := req.Limit
	switch {
	case pageLimit == 0:
		pageLimit = replica.DefaultPageSize
	case pageLimit < 0 || pageLimit > replica.MaxPageSize:
		return Page{}, &Error{Msg: fmt.Sprintf("limit %d: want 1 to %d", req.Limit, replica.MaxPageSize)}
	}
	// The hash binds a continuation to its request: needed only to read
	// one or to return one.
	hash := ""
	offset := 0
	if req.Continuation != "" {
		hash = requestHash(req.Query, q, params)
		if offset, err = parseContinuation(req.Continuation, hash); err != nil {
			return Page{}, err
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opt.Timeout, ErrTimeout)
	defer cancel()
	r := &run{ctx: ctx, q: q, opt: opt, en: env{params: params, slots: make([]any, max(1, len(q.aliases)))}}
	if err := r.window(offset, pageLimit); err != nil {
		return Page{}, err
	}
	scan := r.plan(ix)
	if scan != nil {
		r.presorted = scan.Order != 0
		src = func(ctx context.Context, fn func([]byte) error) error { return ix.Scan(ctx, scan, fn) }
	}
	if err := r.exec(ctx, src); err != nil {
		if errors.Is(context.Cause(ctx), ErrTimeout) && ctx.Err() != nil {
			return Page{}, fmt.Errorf("%w: stopped after %s (narrow it with WHERE, TOP or OFFSET LIMIT)", ErrTimeout, opt.Timeout)
		}
		return Page{}, err
	}
	p := Page{Documents: r.out.docs}
	if p.Documents == nil {
		p.Documents = []json.RawMessage{}
	}
	if r.out.more {
		if hash == "" {
			hash = requestHash(req.Query, q, params)
		}
		p.Continuation = "q1." + strconv.Itoa(offset+len(r.out.docs)) + "." + hash
	}
	if req.Explain {
		p.Plan = r.explain(scan)
	}
	return p, nil
}

func decodeParams(q *Query, ps []Parameter, maxParams int) (map[string]any, error) {
	if len(ps) > maxParams {
		return nil, &Error{Msg: fmt.Sprintf("%d parameters, more than the limit of %d", len(ps), maxParams)}
	}
	out := make(map[string]any, len(ps))
	for _, p := range ps {
		if !strings.HasPrefix(p.Name, "@") || len(p.Name) < 2 {
			return nil, &Error{Msg: fmt.Sprintf("parameter name %q: want @name", p.Name)}
		}
		if _, dup := out[p.Name]; dup {
			return nil, &Error{Msg: fmt.Sprintf("parameter %s is given twice", p.Name)}
		}
		if len(p.Value) == 0 {
			return nil, &Error{Msg: fmt.Sprintf("parameter %s has no value", p.Name)}
		}
		v, err := decodeJSON(p.Value)
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("parameter %s: value is not valid JSON", p.Name)}
		}
		out[p.Name] = v
	}
	names := make([]string, 0, len(q.params))
	for n := range q.params {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return q.params[names[i]] < q.params[names[j]] })
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, errorAt(q.params[n], "parameter %s is not given", n)
		}
	}
	return out, nil
}

// requestHash binds a continuation to its query text and parameter values.
func requestHash(text string, q *Query, params map[string]any) string {
	h := sha256.New()
	h.Write([]byte(text))
	names := make([]string, 0, len(params))
	for n := range params {
		if _, used := q.params[n]; used {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		h.Write([]byte{0})
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(appendJSON(nil, params[n]))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func parseContinuation(tok, hash string) (int, error) {
	rest, ok := strings.CutPrefix(tok, "q1.")
	num, h, ok2 := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if !ok || !ok2 || err != nil || n < 0 || n > maxCount {
		return 0, &Error{Msg: "continuation is not one this API returned"}
	}
	if h != hash {
		return 0, &Error{Msg: "continuation belongs to another query or other parameter values"}
	}
	return n, nil
}

// run is one execution.
type run struct {
	ctx  context.Context
	q    *Query
	opt  Options
	en   env
	rows int // documents and rows looked at, for deadline checks
	held int // bytes held by ORDER BY, GROUP BY and DISTINCT
	out  collector

	// raw is the document being read, as the source gave it.
	raw []byte

	// whereDone: the index scan selects exactly the rows WHERE keeps, so
	// WHERE is not evaluated again (nor the properties it reads decoded).
	whereDone bool

	// ORDER BY
	presorted bool // rows come in ORDER BY's order (an index's)
	sorted    []sortRow
	seq       int
	// GROUP BY and aggregates
	groups   map[string]*group
	groupSeq []*group
}

type sortRow struct {
	keys []any
	seq  int
	out  []byte
}

type group struct {
	slots []any
	accs  []*accumulator
}

// collector takes result rows in order and keeps the page's: rows
// [start, end) of the result (end < 0: no end), at most limit of them and
// about maxBytes.
type collector struct {
	start, end      int
	limit, maxBytes int
	n               int
	docs            []json.RawMessage
	bytes           int
	more            bool
	distinct        map[string]bool
}

// add takes the next result row and reports whether the page is complete.
func (c *collector) add(r *run, out []byte) (bool, error) {
	if c.distinct != nil {
		if c.distinct[string(out)] {
			return false, nil
		}
		if err := r.hold(len(out) + 16); err != nil {
			return false, err
		}
		c.distinct[string(out)] = true
	}
	i := c.n
	c.n++
	if i < c.start {
		return false, nil
	}
	if c.end >= 0 && i >= c.end {
		return true, nil
	}
	if len(c.docs) == c.limit || len(c.docs) > 0 && c.bytes+len(out) > c.maxBytes {
		c.more = true
		return true, nil
	}
	c.docs = append(c.docs, out)
	c.bytes += len(out)
	return false, nil
}

func (r *run) hold(n int) error {
	r.held += n
	if r.held > r.opt.MaxHeldBytes {
		return fmt.Errorf("%w: ORDER BY, GROUP BY or DISTINCT held more than %d bytes (narrow it with WHERE)", ErrTooLarge, r.opt.MaxHeldBytes)
	}
	return nil
}

// window sets the page's place in the result from TOP or OFFSET LIMIT, the
// continuation's offset and the page size.
func (r *run) window(offset, pageLimit int) error {
	q := r.q
	start, end := offset, -1
	if q.Top != nil {
		t, err := r.count(q.Top, "TOP")
		if err != nil {
			return err
		}
		end = t
	}
	if q.Offset != nil {
		o, err := r.count(q.Offset, "OFFSET")
		if err != nil {
			return err
		}
		l, err := r.count(q.Limit, "LIMIT")
		if err != nil {
			return err
		}
		start += o
		end = o + l
	}
	r.out = collector{start: start, end: end, limit: pageLimit, maxBytes: r.opt.MaxPageBytes}
	if q.Distinct {
		r.out.distinct = map[string]bool{}
	}
	return nil
}

const maxCount = 1 << 30

func (r *run) count(e Expr, clause string) (int, error) {
	v := r.en.eval(e)
	f, ok := v.(float64)
	if !ok || f < 0 || f != float64(int64(f)) || f > maxCount {
		return 0, errorAt(e.column(), "%s needs a whole number from 0 to %d", clause, maxCount)
	}
	return int(f), nil
}

// tick counts a document or a row and every checkEvery of them looks at
// the deadline: JOINs multiply rows within one document.
func (r *run) tick() error {
	r.rows++
	if r.rows%checkEvery == 0 {
		return context.Cause(r.ctx)
	}
	return nil
}

func (r *run) grouped() bool { return len(r.q.aggregates) > 0 || len(r.q.GroupBy) > 0 }

func (r *run) exec(ctx context.Context, src Source) error {
	q := r.q
	if r.grouped() {
		r.groups = map[string]*group{}
		if len(q.GroupBy) == 0 {
			// Aggregates without GROUP BY make one row, even over no rows.
			r.newGroup("", nil)
		}
	}
	if r.out.end >= 0 && r.out.start >= r.out.end {
		return nil // TOP 0, LIMIT 0, or a continuation past the end
	}
	need := q.neededPropsWhere(!r.whereDone, !r.presorted)
	var err error
	if q.From == nil {
		_, err = r.row()
	} else {
		err = src(ctx, func(doc []byte) error {
			if err := r.tick(); err != nil {
				return err
			}
			r.raw = doc
			var v any
			var err error
			if need == nil {
				v, err = decodeJSON(doc)
			} else {
				v, err = decodeProps(doc, need)
			}
			if err != nil {
				return fmt.Errorf("decode document: %w", err)
			}
			done, err := r.document(v)
			if err != nil {
				return err
			}
			if done {
				return errStop
			}
			return nil
		})
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	switch {
	case r.grouped():
		for _, g := range r.groupSeq {
			if g.slots != nil {
				r.en.slots = g.slots
			}
			r.en.aggs = make([]any, len(g.accs))
			for i, a := range g.accs {
				r.en.aggs[i] = a.result()
			}
			out := r.project()
			if r.en.err != nil {
				return r.en.err
			}
			if out == nil {
				continue
			}
			if done, err := r.out.add(r, out); err != nil || done {
				return err
			}
		}
	case len(q.OrderBy) > 0 && !r.presorted:
		r.sortRows()
		for _, s := range r.sorted {
			if done, err := r.out.add(r, s.out); err != nil || done {
				return err
			}
		}
	}
	return nil
}

// document binds the FROM alias to a document (or to each element of FROM
// ... IN) and runs the joins.
func (r *run) document(doc any) (bool, error) {
	f := r.q.From
	r.en.slots[0] = doc
	if f.Expr == nil {
		return r.join(0)
	}
	v := r.en.eval(f.Expr)
	if !f.In {
		if isUndefined(v) {
			return false, nil
		}
		r.en.slots[0] = v
		return r.join(0)
	}
	arr, ok := v.([]any)
	if !ok {
		return false, nil
	}
	for _, e := range arr {
		r.en.slots[0] = e
		if done, err := r.join(0); err != nil || done {
			return done, err
		}
	}
	return false, nil
}

func (r *run) join(i int) (bool, error) {
	if i == len(r.q.Joins) {
		return r.row()
	}
	arr, ok := r.en.eval(r.q.Joins[i].Expr).([]any)
	if !ok {
		return false, nil
	}
	for _, e := range arr {
		r.en.slots[i+1] = e
		if done, err := r.join(i + 1); err != nil || done {
			return done, err
		}
	}
	return false, nil
}

// row handles one binding of every alias: the filter, then grouping,
// sorting or the result.
func (r *run) row() (bool, error) {
	done, err := r.rowEval()
	if r.en.err != nil {
		return false, r.en.err
	}
	return done, err
}

func (r *run) rowEval() (bool, error) {
	q := r.q
	if err := r.tick(); err != nil {
		return false, err
	}
	if q.Where != nil && !r.whereDone {
		if b, ok := r.en.eval(q.Where).(bool); !ok || !b {
			return false, nil
		}
	}
	switch {
	case r.grouped():
		return false, r.groupRow()
	case len(q.OrderBy) > 0 && !r.presorted:
		return false, r.sortRow()
	}
	out := r.project()
	if out == nil {
		return false, nil
	}
	return r.out.add(r, out)
}

// project evaluates the SELECT clause; nil when the row has no result (an
// undefined SELECT VALUE).
func (r *run) project() []byte {
	q := r.q
	var v any
	switch {
	case q.Star && q.From.Expr == nil:
		return append([]byte(nil), r.raw...)
	case q.Star:
		v = r.en.slots[0]
	case q.Value:
		v = r.en.eval(q.Items[0].Expr)
	default:
		o := &Object{Keys: make([]string, 0, len(q.Items)), Vals: make([]any, 0, len(q.Items))}
		for _, it := range q.Items {
			o.Keys = append(o.Keys, it.Name)
			o.Vals = append(o.Vals, r.en.eval(it.Expr))
		}
		v = r.en.bounded(o)
	}
	if isUndefined(v) {
		return nil
	}
	return appendJSON(nil, v)
}

func (r *run) sortRow() error {
	out := r.project()
	if out == nil {
		return nil
	}
	keys := make([]any, len(r.q.OrderBy))
	n := len(out) + 32*len(keys)
	for i, o := range r.q.OrderBy {
		k := r.en.eval(o.Expr)
		switch v := k.(type) {
		case string:
			n += len(v)
		case []any, *Object:
			// Encoded once here, not at every comparison.
			if sizeOf(v, MaxValueBytes) > MaxValueBytes {
				r.en.tooLarge()
				return nil
			}
			e := encodedKey{rank: rank(v), text: string(appendJSON(nil, v))}
			n += len(e.text)
			k = e
		}
		keys[i] = k
	}
	if err := r.hold(n); err != nil {
		return err
	}
	r.sorted = append(r.sorted, sortRow{keys: keys, seq: r.seq, out: out})
	r.seq++
	// Without DISTINCT only the first rows up to the page's end can be
	// returned: keep the held set within twice that.
	if w := r.keep(); w > 0 && len(r.sorted) > 2*w {
		r.sortRows()
		r.held = 0
		r.sorted = r.sorted[:w:w] // the next append copies: the rest is freed
		for _, s := range r.sorted {
			r.held += len(s.out) + 32*len(s.keys)
		}
	}
	return nil
}

// keep is how many sorted rows can matter (0: all of them).
func (r *run) keep() int {
	if r.q.Distinct {
		return 0
	}
	w := r.out.start + r.out.limit + 1
	if r.out.end >= 0 {
		w = min(w, r.out.end)
	}
	return w
}

func (r *run) sortRows() {
	order := r.q.OrderBy
	slices.SortFunc(r.sorted, func(a, b sortRow) int {
		for i, o := range order {
			c := compareOrder(a.keys[i], b.keys[i])
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return a.seq - b.seq
	})
}

func (r *run) groupRow() error {
	var key []byte
	for _, e := range r.q.GroupBy {
		v := r.en.eval(e)
		if isUndefined(v) {
			key = append(key, 'u')
		} else {
			key = appendJSON(append(key, 'v'), v)
		}
		key = append(key, 0)
		if len(key) > MaxValueBytes {
			r.en.tooLarge()
			return nil
		}
	}
	g := r.groups[string(key)]
	if g == nil {
		if err := r.hold(len(key) + 64); err != nil {
			return err
		}
		g = r.newGroup(string(key), slices.Clone(r.en.slots))
	}
	for i, a := range r.q.aggregates {
		g.accs[i].add(r.en.eval(a.Args[0]))
	}
	return nil
}

func (r *run) newGroup(key string, slots []any) *group {
	g := &group{slots: slots, accs: make([]*accumulator, len(r.q.aggregates))}
	for i, a := range r.q.aggregates {
		g.accs[i] = newAccumulator(a.Name)
	}
	r.groups[key] = g
	r.groupSeq = append(r.groupSeq, g)
	return g
}
