package query

import "bytes"

// neededProps returns the top-level properties of a document that the query
// reads, or nil when it needs the whole document (SELECT *, the alias used
// as a value, an index that is not a string literal). Documents are decoded
// only as far as the query looks: the rest of each document is skipped
// unparsed.
func (q *Query) neededProps() map[string]bool { return q.neededPropsWhere(true, true) }

// neededPropsWhere is neededProps, leaving WHERE out when where is false
// (an index has answered it) and ORDER BY when order is false (the rows
// come in its order).
func (q *Query) neededPropsWhere(where, order bool) map[string]bool {
	if q.From == nil {
		return map[string]bool{}
	}
	need := map[string]bool{}
	whole := false
	// visit looks at e, whose parent is parent (nil at the top), for
	// uses of the document: the Ref in slot 0 of the expressions run
	// over the document.
	var visit func(e, parent Expr)
	visit = func(e, parent Expr) {
		if whole || e == nil {
			return
		}
		if ref, ok := e.(*Ref); ok && ref.Slot == 0 {
			switch p := parent.(type) {
			case *Member:
				if p.X == e {
					need[p.Name] = true
					return
				}
			case *Index:
				if l, ok := p.Index.(*Literal); ok && p.X == e {
					if s, ok := l.Value.(string); ok {
						need[s] = true
						return
					}
				}
			}
			whole = true
			return
		}
		children(e, func(c Expr) { visit(c, e) })
	}
	if q.From.Expr != nil {
		// The document is read only through FROM's path; the other
		// clauses see its result in slot 0.
		visit(q.From.Expr, nil)
		if whole {
			return nil
		}
		return need
	}
	// SELECT * FROM c returns the document as it is stored (project).
	for _, it := range q.Items {
		visit(it.Expr, nil)
	}
	if where {
		visit(q.Where, nil)
	}
	for _, e := range q.GroupBy {
		visit(e, nil)
	}
	for _, o := range q.OrderBy {
		if order {
			visit(o.Expr, nil)
		}
	}
	for _, j := range q.Joins {
		visit(j.Expr, nil)
	}
	if whole {
		return nil
	}
	return need
}

// decodeProps decodes a JSON object keeping only the properties in need;
// the values of the others are skipped without being parsed.
func decodeProps(b []byte, need map[string]bool) (any, error) {
	d := decoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return decodeJSON(b) // not an object: nothing to skip
	}
	d.i++
	o := &Object{}
	if len(need) == 0 {
		return o, nil // a query that reads no property (COUNT(1))
	}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		return o, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, errBadJSON
		}
		k, want, err := d.key(need)
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, errBadJSON
		}
		d.i++
		if want {
			v, err := d.value(1)
			if err != nil {
				return nil, err
			}
			o.Keys = append(o.Keys, k)
			o.Vals = append(o.Vals, v)
		} else if err := d.skip(); err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) {
			return nil, errBadJSON
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			return o, nil
		default:
			return nil, errBadJSON
		}
	}
}

// skip passes over one JSON value (of a document that was validated when
// it was stored) without building it.
func (d *decoder) skip() error {
	d.space()
	depth := 0
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case '"':
			d.i++
			for d.i < len(d.b) {
				k := bytes.IndexAny(d.b[d.i:], `"\`)
				if k < 0 {
					return errBadJSON
				}
				d.i += k
				if d.b[d.i] == '"' {
					break
				}
				d.i += 2 // an escape: the next byte is never the closing quote
			}
			if d.i >= len(d.b) {
				return errBadJSON
			}
			d.i++
		case '{', '[':
			depth++
			d.i++
		case '}', ']':
			if depth == 0 {
				return nil // the end of the enclosing object
			}
			depth--
			d.i++
		case ',':
			if depth == 0 {
				return nil
			}
			d.i++
		default:
			d.i++
		}
		if depth == 0 && d.i < len(d.b) {
			// A scalar or a closed container ends at the next
			// delimiter; let the loop find it.
			if c := d.b[d.i]; c == ',' || c == '}' || c == ']' {
				return nil
			}
		}
	}
	if depth != 0 {
		return errBadJSON
	}
	return nil
}

// key reads an object key and reports whether need has it; it allocates
// the key only when it is needed.
func (d *decoder) key(need map[string]bool) (string, bool, error) {
	start := d.i + 1
	end := bytes.IndexByte(d.b[start:], '"')
	if end >= 0 && bytes.IndexByte(d.b[start:start+end], '\\') < 0 {
		raw := d.b[start : start+end]
		d.i = start + end + 1
		if !need[string(raw)] { // no allocation for the lookup
			return "", false, nil
		}
		k := string(raw)
		return k, true, nil
	}
	k, err := d.str()
	return k, err == nil && need[k], err
}
