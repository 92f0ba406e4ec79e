package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Limits of what a Poster reads from a server.
const (
	maxHeaderLine  = 8 << 10
	maxHeaderLines = 100
	maxRespBody    = 16 << 20
)

// Poster is a lean HTTP/1.1 load generator for one keep-alive connection,
// in the manner of wrk: a request goes out in one write and its response is
// read on the caller's goroutine. The benchmarks run their clients on the
// same two cores as the server, and net/http's client spends about as much
// CPU per request as the server it measures (a request crosses three
// goroutines); a Poster spends a fraction of that, so the figure is the
// server's. It speaks enough HTTP/1.1 for that: Content-Length and chunked
// responses, Connection: close, and it reconnects when the server closed.
// Not safe for concurrent use.
type Poster struct {
	addr    string
	path    string
	timeout time.Duration
	conn    net.Conn
	br      *bufio.Reader
	req     []byte
	body    []byte
}

// NewPoster returns a client that posts JSON to path on addr (host:port).
// It connects on first use.
func NewPoster(addr, path string, timeout time.Duration) *Poster {
	return &Poster{addr: addr, path: path, timeout: timeout}
}

// Post sends body and returns the status code and the response body, which
// is valid until the next call.
func (p *Poster) Post(body []byte) (int, []byte, error) {
	if p.conn == nil {
		c, err := net.DialTimeout("tcp", p.addr, p.timeout)
		if err != nil {
			return 0, nil, err
		}
		p.conn, p.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	p.req = append(p.req[:0], "POST "...)
	p.req = append(p.req, p.path...)
	p.req = append(p.req, " HTTP/1.1\r\nHost: "...)
	p.req = append(p.req, p.addr...)
	p.req = append(p.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	p.req = strconv.AppendInt(p.req, int64(len(body)), 10)
	p.req = append(p.req, "\r\n\r\n"...)
	p.req = append(p.req, body...)
	if p.timeout > 0 {
		p.conn.SetDeadline(time.Now().Add(p.timeout))
	}
	if _, err := p.conn.Write(p.req); err != nil {
		p.Close()
		return 0, nil, err
	}
	status, keep, err := p.readResponse()
	if err != nil || !keep {
		p.Close()
	}
	return status, p.body, err
}

// Close closes the connection; the next Post dials again.
func (p *Poster) Close() error {
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn, p.br = nil, nil
	return err
}

var errMalformed = errors.New("malformed HTTP response")

func (p *Poster) readResponse() (status int, keepAlive bool, err error) {
	line, err := p.line()
	if err != nil {
		return 0, false, err
	}
	// HTTP/1.1 201 Created
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keepAlive = line[7] == '1'
	length, chunked := -1, false
	for n := 0; ; n++ {
		if n == maxHeaderLines {
			return 0, false, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaderLines)
		}
		h, err := p.line()
		if err != nil {
			return 0, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errMalformed, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil || length < 0 || length > maxRespBody {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
			if !chunked {
				return 0, false, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keepAlive = false
			}
		}
	}
	p.body = p.body[:0]
	switch {
	case status < 200 || status == 204 || status == 304:
	case chunked:
		err = p.readChunked()
	case length >= 0:
		err = p.readN(length)
	default: // body until the server closes
		keepAlive = false
		var b bytes.Buffer
		_, err = b.ReadFrom(io.LimitReader(p.br, maxRespBody+1))
		if err == nil && b.Len() > maxRespBody {
			err = fmt.Errorf("%w: body over %d bytes", errMalformed, maxRespBody)
		}
		p.body = append(p.body, b.Bytes()...)
	}
	return status, keepAlive, err
}

func (p *Poster) readChunked() error {
	for {
		line, err := p.line()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || int64(len(p.body))+n > maxRespBody {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, then the empty line
				t, err := p.line()
				if err != nil || len(t) == 0 {
					return err
				}
			}
		}
		if err := p.readN(int(n)); err != nil {
			return err
		}
		if crlf, err := p.line(); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

// readN appends the next n bytes to p.body.
func (p *Poster) readN(n int) error {
	start := len(p.body)
	p.body = append(p.body, make([]byte, n)...)
	_, err := io.ReadFull(p.br, p.body[start:])
	return err
}

// line reads a CRLF- (or LF-) terminated line without its terminator.
func (p *Poster) line() ([]byte, error) {
	line, err := p.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxHeaderLine {
		return nil, fmt.Errorf("%w: line over %d bytes", errMalformed, maxHeaderLine)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}
