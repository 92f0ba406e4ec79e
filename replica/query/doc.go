// Package query implements the subset of the Azure Cosmos DB for NoSQL query
// language that edges and hubs answer (docs/queries.md): a hand-written
// lexer and recursive-descent parser producing an AST (Parse), and an
// evaluator with Cosmos DB's semantics — undefined is not null, a comparison
// of mismatched types is undefined and drops the row, ORDER BY over mixed
// types follows Cosmos DB's type order — with aggregates, GROUP BY, DISTINCT,
// TOP, OFFSET LIMIT, JOIN over arrays and parameters (Execute).
//
// Execute reads the documents of a container from a Source, which each
// engine provides over its read pool, and returns one page of the result
// with a continuation bound to the query text and parameter values. Every
// size and loop is bounded (Limits, Options): query text, nesting,
// parameters, page documents and bytes, what ORDER BY, GROUP BY and
// DISTINCT hold, the values a query builds, and time.
//
// A bad query is an *Error carrying the column where the fault was found;
// it wraps ErrBadQuery.
package query
