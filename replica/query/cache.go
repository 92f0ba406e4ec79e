package query

import "sync"

// Parsed queries are kept by their text, so that an application repeating
// a query (with other parameter values) parses it once. A parsed *Query is
// never changed after parsing: runs share it.
const (
	// maxCachedQueries bounds the queries kept; when full the cache is
	// emptied and fills again with the queries in use.
	maxCachedQueries = 512
	// maxCachedText bounds the text of a query kept.
	maxCachedText = 4 << 10
)

type cacheKey struct {
	text                string
	maxLength, maxDepth int
}

var parsed struct {
	mu sync.Mutex
	m  map[cacheKey]*Query
}

// parseCached is ParseLimits through the cache. Queries that fail to parse
// are not kept.
func parseCached(text string, lim Limits) (*Query, error) {
	lim = lim.withDefaults()
	if len(text) > maxCachedText {
		return ParseLimits(text, lim)
	}
	k := cacheKey{text, lim.MaxQueryLength, lim.MaxDepth}
	parsed.mu.Lock()
	q := parsed.m[k]
	parsed.mu.Unlock()
	if q != nil {
		return q, nil
	}
	q, err := ParseLimits(text, lim)
	if err != nil {
		return nil, err
	}
	parsed.mu.Lock()
	if parsed.m == nil || len(parsed.m) >= maxCachedQueries {
		parsed.m = make(map[cacheKey]*Query, maxCachedQueries)
	}
	parsed.m[k] = q
	parsed.mu.Unlock()
	return q, nil
}
