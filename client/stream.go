package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// ChangeStream is a live change feed (?stream=true, Server-Sent Events).
// Next returns the records in order; when the connection breaks it
// reconnects after the last record it returned (the stream's resume rule),
// after a backoff. It gives up after Config.MaxAttempts connections in a
// row that fail, or that break before they bring a record or a heartbeat.
//
// One goroutine calls Next; Close may come from any goroutine.
type ChangeStream struct {
	c         *Client
	ctx       context.Context
	container string
	opt       ChangesOptions
	rd        *bufio.Reader
	drops     int  // connections in a row that broke without progress
	alive     bool // the current connection brought a record or a heartbeat

	mu     sync.Mutex
	body   io.ReadCloser
	closed bool
}

// StreamChanges opens a live change feed of a container after opt.Since
// (opt.Limit is the server's page size while it catches up). An error the
// server gives before the stream starts (an unknown container) comes back
// here. Close the stream when done; ctx ends it too.
func (c *Client) StreamChanges(ctx context.Context, container string, opt ChangesOptions) (*ChangeStream, error) {
	s := &ChangeStream{c: c, ctx: ctx, container: container, opt: opt}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

// connect opens the stream from s.opt.Since, retrying as a GET is.
func (s *ChangeStream) connect() error {
	req := request{method: http.MethodGet, path: withQuery("/api/v1/containers/"+seg(s.container)+"/changes", s.opt.query()),
		header: http.Header{"Accept": {"text/event-stream"}}}
	var lastErr error
	for attempt := 0; attempt < s.c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := s.c.sleep(s.ctx, attempt); err != nil {
				return errors.Join(lastErr, err)
			}
		}
		resp, err := s.c.send(s.ctx, req, true)
		if err == nil && resp.StatusCode != http.StatusOK {
			ae := apiError(resp)
			resp.Body.Close()
			if !retryable(retryIdempotent, nil, ae.Status) {
				return ae
			}
			lastErr = ae
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return err
			}
			lastErr = err
			continue
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			resp.Body.Close()
			return ErrStreamClosed
		}
		s.body, s.rd, s.alive = resp.Body, bufio.NewReaderSize(resp.Body, 32<<10), false
		return nil
	}
	return lastErr
}

// Next returns the next change record, waiting for one. It fails with the
// context's error once the context ends, with an *Error when the server
// ends the stream with an error event, and with the last connection error
// when it cannot reconnect.
func (s *ChangeStream) Next() (Change, error) {
	for {
		s.mu.Lock()
		closed, connected := s.closed, s.body != nil
		s.mu.Unlock()
		if closed {
			return Change{}, ErrStreamClosed
		}
		if !connected {
			if err := s.connect(); err != nil {
				return Change{}, err
			}
		}
		ev, err := s.event()
		if err != nil {
			s.mu.Lock()
			if s.body != nil {
				s.body.Close()
				s.body = nil
			}
			closed := s.closed
			s.mu.Unlock()
			switch {
			case closed:
				return Change{}, ErrStreamClosed
			case s.ctx.Err() != nil:
				return Change{}, context.Cause(s.ctx)
			case errors.Is(err, ErrResponseTooLarge):
				return Change{}, err
			}
			if s.alive {
				s.drops = 0
			}
			s.drops++
			if s.drops >= s.c.cfg.MaxAttempts {
				return Change{}, fmt.Errorf("client: change stream of %s broke %d times in a row: %w", s.container, s.drops, err)
			}
			if err := s.c.sleep(s.ctx, s.drops); err != nil {
				return Change{}, err
			}
			continue // reconnect from the last record returned
		}
		switch ev.name {
		case "change":
			var ch Change
			if err := json.Unmarshal(ev.data, &ch); err != nil {
				return Change{}, fmt.Errorf("client: change event: %w", err)
			}
			if p := ch.Position(); p > s.opt.Since {
				s.opt.Since = p
			}
			s.alive = true
			return ch, nil
		case "error":
			e := &Error{}
			if err := json.Unmarshal(ev.data, &struct {
				Code    *string `json:"code"`
				Message *string `json:"message"`
			}{&e.Code, &e.Message}); err != nil {
				e.Message = string(ev.data)
			}
			e.Status = statusOfCode(e.Code)
			s.Close()
			return Change{}, e
		}
	}
}

// statusOfCode is the HTTP status of an API error code, for errors that
// come in a stream after its status line.
func statusOfCode(code string) int {
	switch code {
	case "bad_request", "partition_key_change":
		return http.StatusBadRequest
	case "unauthorized":
		return http.StatusUnauthorized
	case "forbidden":
		return http.StatusForbidden
	case "not_found", "container_not_found":
		return http.StatusNotFound
	case "conflict", "container_mismatch":
		return http.StatusConflict
	case "unavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Close ends the stream.
func (s *ChangeStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.body == nil {
		return nil
	}
	err := s.body.Close()
	s.body = nil
	return err
}

type sseEvent struct {
	name string
	data []byte
}

// event reads one event (comments and events without data are skipped),
// each at most MaxEventBytes.
func (s *ChangeStream) event() (sseEvent, error) {
	var ev sseEvent
	var data bytes.Buffer
	hasData := false
	for {
		line, err := s.line()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.data = data.Bytes()
				if ev.name == "" {
					ev.name = "message"
				}
				return ev, nil
			}
			ev = sseEvent{}
			continue
		}
		if line[0] == ':' {
			if bytes.HasPrefix(line, []byte(": heartbeat")) {
				s.alive = true
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			hasData = true
			if data.Len()+len(value) > MaxEventBytes {
				return sseEvent{}, fmt.Errorf("%w: a stream event over %d bytes", ErrResponseTooLarge, MaxEventBytes)
			}
			data.Write(value)
		}
		// "id" is the record's position, which Next takes from the record
		// itself; "retry" is for browsers.
	}
}

// line reads one line without its end (\n or \r\n), at most MaxEventBytes.
func (s *ChangeStream) line() ([]byte, error) {
	var buf []byte
	for {
		frag, err := s.rd.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > MaxEventBytes {
			return nil, fmt.Errorf("%w: a stream line over %d bytes", ErrResponseTooLarge, MaxEventBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r"))
		return buf, nil
	}
}
