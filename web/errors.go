// Package web is edgesync's HTTP layer on echo v4: the API handlers of the
// edge (and later the hub), the one place where domain errors become status
// codes and {"code","message"} bodies, request metrics, and the streaming
// change feed.
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
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
	{query.ErrBadQuery, http.StatusBadRequest, "bad_query"},
	{query.ErrTimeout, http.StatusRequestTimeout, "query_timeout"},
	{query.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
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
	{hub.ErrNotSequencer, http.StatusServiceUnavailable, "unavailable"},
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

// ErrorStatus maps err to its status and body exactly as every error
// response of the API does. Protocols served beside the API (web/cosmos)
// take the status from here and shape the body their own way.
func ErrorStatus(err error) (int, Error) { return errorResponse(err) }

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

// Listener makes the requests that net/http refuses before any handler sees
// them (a malformed request line, path escape or header) get the same JSON
// error body as every other error, instead of net/http's plain text. Serve
// both APIs on it.
func Listener(ln net.Listener) net.Listener { return protocolErrorListener{ln} }

type protocolErrorListener struct{ net.Listener }

func (l protocolErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return protocolErrorConn{c}, nil
}

// protocolErrorConn rewrites net/http's early error responses, which it
// writes to the connection in one piece: a 4xx status line followed at once
// by exactly these headers (every response of a handler has others, Date
// first among them).
type protocolErrorConn struct{ net.Conn }

const earlyErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c protocolErrorConn) Write(p []byte) (int, error) {
	if out, ok := jsonProtocolError(p); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite lets net/http half-close after an error response, as it does
// on a TCP connection, so that the client reads the response.
func (c protocolErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's own ReadFrom (sendfile) for bodies.
func (c protocolErrorConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// jsonProtocolError returns the JSON response for one of net/http's early
// plain-text error responses.
func jsonProtocolError(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 4"
	if len(p) > 1024 || !bytes.HasPrefix(p, []byte(proto)) {
		return nil, false
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < len("HTTP/1.1 400") || !bytes.HasPrefix(p[eol:], []byte(earlyErrorHeaders)) {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len("HTTP/1.1 ") : len("HTTP/1.1 ")+3]))
	if err != nil {
		return nil, false
	}
	msg := "the request is not valid HTTP: its request line (method, path and escapes, protocol) or a header is malformed"
	if _, text, ok := strings.Cut(string(p[len("HTTP/1.1 400"):eol]), ": "); ok {
		msg = text
	} else if status != http.StatusBadRequest {
		msg = http.StatusText(status)
	}
	body, err := json.Marshal(Error{Code: httpCode(status), Message: msg})
	if err != nil {
		return nil, false
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body), true
}
