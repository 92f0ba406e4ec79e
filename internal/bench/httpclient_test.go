package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoster_NetHTTPServer posts to a net/http server whose responses take
// each framing the server can choose: Content-Length, chunked (a flushed
// or large body), no body, and Connection: close.
func TestPoster_NetHTTPServer(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/p" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch string(body) {
		case "small":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte("ok:" + string(body)))
		case "large": // over net/http's buffer: chunked
			w.WriteHeader(http.StatusCreated)
			w.Write(bytes.Repeat([]byte("x"), 10000))
		case "flushed":
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		case "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			http.Error(w, "unknown", http.StatusTeapot)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	p := NewPoster(srv.Listener.Addr().String(), "/p", 5*time.Second)
	defer p.Close()
	cases := []struct {
		body   string
		status int
		want   string
	}{
		{"small", 201, "ok:small"},
		{"large", 201, strings.Repeat("x", 10000)},
		{"flushed", 200, "part1,part2"},
		{"empty", 204, ""},
		{"small", 201, "ok:small"},
		{"other", 418, "unknown\n"},
		{"close", 200, "bye"},
		{"small", 201, "ok:small"}, // dials again
	}
	for i, c := range cases {
		status, body, err := p.Post([]byte(c.body))
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c.body, err)
		}
		if status != c.status || string(body) != c.want {
			t.Fatalf("case %d (%s): got %d %.40q, want %d %.40q", i, c.body, status, body, c.status, c.want)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (keep-alive until the server closed one)", n)
	}
}

// TestPoster_Malformed feeds the client broken responses from a raw TCP
// server: each must be an error, not a hang or a wrong status.
func TestPoster_Malformed(t *testing.T) {
	cases := map[string]string{
		"not HTTP":          "SSH-2.0-OpenSSH\r\n\r\n",
		"short status":      "HTTP/1.1 20\r\n\r\n",
		"bad status":        "HTTP/1.1 abc OK\r\n\r\n",
		"bad header":        "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
		"bad length":        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"huge length":       "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n",
		"short body":        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"bad chunk":         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"chunk without end": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
		"gzip encoding":     "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"long line":         "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n",
		"closed early":      "HTTP/1.1 200 OK\r\nContent-Le",
	}
	for name, resp := range cases {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				r := bufio.NewReader(c)
				for { // read the request head, then answer
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, resp)
			}()
			p := NewPoster(ln.Addr().String(), "/", 2*time.Second)
			defer p.Close()
			_, _, err = p.Post([]byte("x"))
			if err == nil {
				t.Fatal("no error")
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("timed out instead of failing: %v", err)
			}
		})
	}
}
