package cosmos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// querySpec is the body of a query: Cosmos DB's and edgesync's agree.
type querySpec struct {
	Query      string            `json:"query"`
	Parameters []query.Parameter `json:"parameters"`
}

func readQuery(q *request) (querySpec, error) {
	body, err := readBody(q, maxQueryBody)
	if err != nil {
		return querySpec{}, err
	}
	var spec querySpec
	if err := json.Unmarshal(body, &spec); err != nil {
		return querySpec{}, fmt.Errorf("%w: query body: %v", replica.ErrInvalid, err)
	}
	return spec, nil
}

// query runs a query through the node's query engine (docs/queries.md),
// over the one partition key range: ORDER BY, TOP, OFFSET LIMIT, DISTINCT,
// aggregates and GROUP BY are all evaluated here, and a page ends with
// x-ms-continuation while more follow.
func (s *Server) query(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	spec, err := readQuery(q)
	if err != nil {
		return err
	}
	n, err := pageSize(q)
	if err != nil {
		return err
	}
	req := query.Request{Query: spec.Query, Parameters: spec.Parameters, Limit: n, Continuation: q.r.Header.Get("x-ms-continuation")}
	pk, hasPK, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil {
		return err
	}
	if hasPK {
		req.PartitionKey = &pk
	}
	p, err := s.e.Query(q.ctx, c.Name, req)
	if err != nil {
		return err
	}
	s.writeDocuments(q, len(p.Documents), func(buf []byte, i int) []byte {
		return append(buf, p.Documents[i]...)
	}, p.Continuation)
	return nil
}

// queryPlan answers the query-plan request the JS SDK makes beside a
// query: one range and nothing for the client to do (no ORDER BY merge,
// aggregation or limit), because this node evaluates the whole query over
// its one range. The query is parsed, so a bad one fails here as there.
func (s *Server) queryPlan(q *request) error {
	if _, err := s.container(q); err != nil {
		return err
	}
	spec, err := readQuery(q)
	if err != nil {
		return err
	}
	if _, err := query.Parse(spec.Query); err != nil {
		return err
	}
	plan := []byte(`{"partitionedQueryExecutionInfoVersion":2,"queryInfo":{"distinctType":"None","top":null,"offset":null,"limit":null,` +
		`"orderBy":[],"orderByExpressions":[],"groupByExpressions":[],"groupByAliases":[],"aggregates":[],"groupByAliasToAggregateType":{},` +
		`"rewrittenQuery":"","hasSelectValue":false,"dCountInfo":null,"hasNonStreamingOrderBy":false},` +
		`"queryRanges":[{"min":"","max":"FF","isMinInclusive":true,"isMaxInclusive":false}]}`)
	s.writeBody(q, http.StatusOK, bytes.Clone(plan))
	return nil
}

// queryResources runs a query over databases or containers (docs, each a
// resource's JSON) with the node's query engine, and answers in one page
// under key (Databases, DocumentCollections).
func (s *Server) queryResources(q *request, key string, docs [][]byte) error {
	spec, err := readQuery(q)
	if err != nil {
		return err
	}
	src := func(ctx context.Context, fn func([]byte) error) error {
		for _, d := range docs {
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := query.Execute(q.ctx, query.Request{Query: spec.Query, Parameters: spec.Parameters, Limit: replica.MaxPageSize,
		Continuation: q.r.Header.Get("x-ms-continuation")}, src, query.Options{})
	if err != nil {
		return err
	}
	if p.Continuation != "" {
		q.w.Header().Set("x-ms-continuation", p.Continuation)
	}
	q.w.Header().Set("x-ms-item-count", strconv.Itoa(len(p.Documents)))
	s.writeJSON(q, http.StatusOK, map[string]any{"_rid": "", key: p.Documents, "_count": len(p.Documents)})
	return nil
}
