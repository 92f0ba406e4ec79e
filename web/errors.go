// Package web is edgesync's HTTP layer on echo v4: the API handlers of the
// edge (and later the hub), the one place where domain errors become status
// codes and {"code","message"} bodies, request metrics, and the streaming
// change feed.
package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
)

// errUnsupportedMediaType means a request body's Content-Type is not one the
// API takes. 415.
var errUnsupportedMediaType = errors.New("unsupported media type")

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorStatus maps domain errors to a status and an error code. Order
// matters: the first match wins.
var errorStatus = []struct {
	err    error
	status int
	code   string
}{
	{replica.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{replica.ErrPartitionKeyChange, http.StatusBadRequest, "partition_key_change"},
	{replica.ErrInvalid, http.StatusBadRequest, "bad_request"},
	{replica.ErrContainerNotFound, http.StatusNotFound, "container_not_found"},
	{replica.ErrNotFound, http.StatusNotFound, "not_found"},
	{replica.ErrExists, http.StatusConflict, "conflict"},
	{hub.ErrConflictSettled, http.StatusConflict, "conflict"},
	{replica.ErrContainerMismatch, http.StatusConflict, "container_mismatch"},
	{replica.ErrPreconditionFailed, http.StatusPreconditionFailed, "precondition_failed"},
	{replica.ErrForbidden, http.StatusForbidden, "forbidden"},
	{hub.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{errUnsupportedMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{replica.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
	{context.Canceled, http.StatusServiceUnavailable, "unavailable"},
}

// ErrorHandler is the echo HTTPErrorHandler: handlers return errors and this
// turns them into responses, in this one place.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := errorResponse(err)
		var he *echo.HTTPError
		switch {
		case status != http.StatusInternalServerError:
		case errors.As(err, &he):
			status = he.Code
			body = Error{Code: httpCode(he.Code), Message: http.StatusText(he.Code)}
			if msg, ok := he.Message.(string); ok {
				body.Message = msg
			}
		default:
			log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			log.Debug("write error response", "err", err)
		}
	}
}

// errorResponse maps a domain error to its status and body; anything it
// does not know is a 500 "internal".
func errorResponse(err error) (int, Error) {
	for _, m := range errorStatus {
		if errors.Is(err, m.err) {
			return m.status, Error{Code: m.code, Message: err.Error()}
		}
	}
	return http.StatusInternalServerError, Error{Code: "internal", Message: "internal error"}
}

func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}
