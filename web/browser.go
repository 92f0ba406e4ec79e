package web

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgesync/edgesync/replica"
)

// What a browser tells about where a request comes from, and the checks both
// APIs make with it. A page of another site can make a browser send simple
// requests (GET, HEAD, and POST with a text/plain or form body) to any
// address, with the cookies of that address when they are not SameSite, and
// can point a host name of its own at a local address (DNS rebinding). It
// cannot set Authorization, a JSON Content-Type, or any other method without
// a CORS preflight that the server approves; and browsers send Origin on
// every cross-origin request that can change something, Sec-Fetch-Site on
// every request.

// unsafeMethod reports whether a request may change state.
func unsafeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// crossOrigin reports whether a browser sent r from a page of another origin
// than r's own, and that origin ("" when the browser did not say). A page of
// the same site on another port (http://localhost:3000 calling
// http://localhost:7070) is another origin.
func crossOrigin(r *http.Request) (origin string, cross bool) {
	origin = r.Header.Get("Origin")
	if origin != "" && !sameHost(origin, r.Host) {
		cross = true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		cross = true
	}
	return origin, cross
}

// sameHost reports whether an Origin ("scheme://host[:port]", or "null")
// names the host and port the request was sent to.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(withPort(u.Host, u.Scheme), withPort(host, u.Scheme))
}

// withPort adds the scheme's default port to a host without one.
func withPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// jsonBody checks the Content-Type of an unsafe request that has a body (or
// says it has one): application/json or application/<x>+json. Every other
// type, and none, is refused: text/plain and the form types are exactly what
// a page of another site can send without asking.
func jsonBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	if !isJSONType(ct) {
		return fmt.Errorf("%w: Content-Type %q: this API takes application/json", errUnsupportedMediaType, ct)
	}
	return nil
}

// isJSONType reports whether a Content-Type is JSON.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// simpleBody reports whether a request's body could have been sent by a page
// of another site without a preflight: no Content-Type, or one of the three
// that HTML forms and simple requests use.
func simpleBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	switch mt {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return false
}

// errCrossOrigin is the refusal of a request from a page of another origin.
func errCrossOrigin(origin string) error {
	if origin == "" {
		origin = "another site"
	}
	return fmt.Errorf("%w: a request from a page of %s is refused", replica.ErrForbidden, origin)
}
