package cosmos

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Resource types of the REST API's paths.
const (
	typeDatabases  = "dbs"
	typeContainers = "colls"
	typeItems      = "docs"
	typePKRanges   = "pkranges"
	typeConflicts  = "conflicts"
)

// maxPath bounds a request's escaped path: three names and an item id, each
// escaped at most three bytes a byte, and the type segments.
const maxPath = 16 << 10

// resource is what a request's path names: the account (no segments), a
// feed of resources of one type (an odd number of segments: POST to create,
// GET to list) or one resource (an even number).
type resource struct {
	typ  string // resource type the request acts on; "" for the account
	link string // resource link as the signature takes it
	feed bool   // the path names a feed, not one resource
	db   string
	coll string
	id   string // item or conflict id
}

// parsePath parses an escaped request path such as
// /dbs/{db}/colls/{coll}/docs/{id}. Each name is unescaped once; the
// resource link is the unescaped names joined by '/', as the SDKs sign it.
func parsePath(escaped string) (resource, error) {
	if len(escaped) > maxPath {
		return resource{}, fmt.Errorf("path of %d bytes, limit %d", len(escaped), maxPath)
	}
	p := strings.Trim(escaped, "/")
	if p == "" {
		return resource{}, nil
	}
	segs := strings.Split(p, "/")
	if len(segs) > 6 {
		return resource{}, fmt.Errorf("path %q: too many segments", escaped)
	}
	for i, s := range segs {
		u, err := url.PathUnescape(s)
		if err != nil {
			return resource{}, fmt.Errorf("path %q: bad escape", escaped)
		}
		if u == "" {
			return resource{}, fmt.Errorf("path %q: empty segment", escaped)
		}
		if i%2 == 1 && strings.ContainsAny(u, "/\\?#") {
			return resource{}, fmt.Errorf("path %q: name %q contains '/', '\\', '?' or '#'", escaped, u)
		}
		segs[i] = u
	}
	types := []string{typeDatabases, typeContainers, ""}
	for i := 0; i < len(segs); i += 2 {
		want := types[i/2]
		if want == "" {
			switch segs[i] {
			case typeItems, typePKRanges, typeConflicts:
			default:
				return resource{}, fmt.Errorf("%w: resource type %q", errUnsupportedResource, segs[i])
			}
		} else if segs[i] != want {
			return resource{}, fmt.Errorf("%w: resource type %q after %q", errUnsupportedResource, segs[i], strings.Join(segs[:i], "/"))
		}
	}
	r := resource{}
	n := len(segs)
	if n%2 == 1 {
		r.feed, r.typ, r.link = true, segs[n-1], strings.Join(segs[:n-1], "/")
	} else {
		r.typ, r.link = segs[n-2], strings.Join(segs, "/")
	}
	if n >= 2 {
		r.db = segs[1]
	}
	if n >= 4 {
		r.coll = segs[3]
	}
	if n >= 6 {
		r.id = segs[5]
	}
	return r, nil
}

// errUnsupportedResource marks a path naming a resource type edgesync does
// not serve (users, permissions, stored procedures, triggers, ...).
var errUnsupportedResource = errors.New("unsupported resource")
