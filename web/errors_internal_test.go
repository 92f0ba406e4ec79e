package web

import (
	"strings"
	"testing"
)

// TestJSONProtocolError: net/http's early error responses become JSON;
// anything else passes unchanged.
func TestJSONProtocolError(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string // want: "" for unchanged, else a substring of the rewrite
	}{
		{"bad request", "HTTP/1.1 400 Bad Request" + earlyErrorHeaders + "400 Bad Request", `{"code":"bad_request","message":"the request is not valid HTTP`},
		{"with a reason", "HTTP/1.1 400 Bad Request: missing required Host header" + earlyErrorHeaders + "400 Bad Request: missing required Host header",
			`{"code":"bad_request","message":"missing required Host header"}`},
		{"no reason phrase", "HTTP/1.1 400" + earlyErrorHeaders, `{"code":"bad_request"`},
		{"headers too large", "HTTP/1.1 431 Request Header Fields Too Large" + earlyErrorHeaders + "431 Request Header Fields Too Large",
			`HTTP/1.1 431 Request Header Fields Too Large`},
		{"a handler's 400", "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nDate: x\r\n\r\n{}", ""},
		{"a 200", "HTTP/1.1 200 OK" + earlyErrorHeaders, ""},
		{"a body that looks like one", "xHTTP/1.1 400 Bad Request" + earlyErrorHeaders, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := jsonProtocolError([]byte(tt.in))
			if tt.want == "" {
				if ok {
					t.Fatalf("rewrote %q to %q, want it unchanged", tt.in, out)
				}
				return
			}
			if !ok || !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "Content-Type: application/json\r\n") {
				t.Fatalf("jsonProtocolError(%q) = %q, %v; want JSON containing %q", tt.in, out, ok, tt.want)
			}
		})
	}
}
