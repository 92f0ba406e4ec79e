package replica

import (
	"fmt"
	"strings"
)

// MaxIndexedPaths bounds the paths of an indexing policy.
const MaxIndexedPaths = 16

// IndexingPolicy lists the paths whose values a node indexes, such as
// "/price" or "/owner/name". A path names object properties only (a
// segment is always a property name, never an array position).
type IndexingPolicy struct {
	Paths []string `json:"paths"`
}

// normalize checks a policy; a policy without paths is none (nil).
func (p *IndexingPolicy) normalize() (*IndexingPolicy, error) {
	if p == nil || len(p.Paths) == 0 {
		return nil, nil
	}
	if len(p.Paths) > MaxIndexedPaths {
		return nil, fmt.Errorf("%w: indexingPolicy: %d paths, at most %d", ErrInvalid, len(p.Paths), MaxIndexedPaths)
	}
	seen := make(map[string]bool, len(p.Paths))
	out := &IndexingPolicy{Paths: make([]string, 0, len(p.Paths))}
	for _, path := range p.Paths {
		segs, err := parsePath(path)
		if err != nil {
			return nil, fmt.Errorf("%w: indexingPolicy path %q: %v", ErrInvalid, path, err)
		}
		if isSystemProperty(segs[0]) {
			return nil, fmt.Errorf("%w: indexingPolicy path %q: system properties are not indexed", ErrInvalid, path)
		}
		for _, s := range segs {
			if strings.ContainsAny(s, "\"\\") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
				return nil, fmt.Errorf("%w: indexingPolicy path %q: a segment holds a quote, a backslash or a control character", ErrInvalid, path)
			}
		}
		key := strings.Join(segs, "\x00")
		if seen[key] {
			return nil, fmt.Errorf("%w: indexingPolicy path %q is given twice", ErrInvalid, path)
		}
		seen[key] = true
		out.Paths = append(out.Paths, path)
	}
	return out, nil
}

// IndexJSONPath returns the SQLite JSON path of a policy path's segments:
// $."a"."b".
func IndexJSONPath(segs []string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, s := range segs {
		b.WriteString(`."`)
		b.WriteString(s)
		b.WriteString(`"`)
	}
	return b.String()
}

// IndexPathNames returns the property names of an indexing policy path
// ("/owner/name": owner, name).
func IndexPathNames(path string) ([]string, error) { return parsePath(path) }
