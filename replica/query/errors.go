package query

import (
	"errors"
	"fmt"
)

var (
	// ErrBadQuery marks query text that does not parse or cannot run as
	// written, and bad parameters or continuations. The web layer answers
	// it with 400 bad_query.
	ErrBadQuery = errors.New("bad query")
	// ErrTimeout means a query ran past its time limit and was stopped.
	ErrTimeout = errors.New("query took too long")
	// ErrTooLarge means a query needed to hold more rows than its limit
	// allows (ORDER BY, GROUP BY and DISTINCT hold what they sort,
	// group or compare).
	ErrTooLarge = errors.New("query result too large")
)

// Error is a bad query: what is wrong and the column (1-based, in
// characters from the start of the query text) where it was found; Column
// is 0 when the fault is not in the text (a parameter, a continuation).
type Error struct {
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s at column %d", e.Msg, e.Column)
	}
	return e.Msg
}

// Unwrap makes errors.Is(err, ErrBadQuery) hold.
func (e *Error) Unwrap() error { return ErrBadQuery }

func errorAt(col int, format string, args ...any) error {
	return &Error{Column: col, Msg: fmt.Sprintf(format, args...)}
}
