package cosmos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// MaxClockSkew is how far a request's x-ms-date may be from this node's
// clock, either way, before the request is refused as Cosmos DB refuses it.
const MaxClockSkew = 15 * time.Minute

// maxAuthHeader bounds the Authorization header: a master-key token is about
// 80 bytes, URL-encoded.
const maxAuthHeader = 1024

// Key is a master key: the HMAC-SHA256 secret the SDKs sign requests with.
type Key struct{ secret []byte }

// ParseKey decodes a master key given as base64 (standard alphabet, as the
// Cosmos DB portal shows keys; the URL-safe alphabet is accepted too).
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < 16 {
				return Key{}, fmt.Errorf("key: %d bytes decoded, want at least 16", len(b))
			}
			return Key{secret: b}, nil
		}
	}
	return Key{}, errors.New("key: not base64")
}

// Sign returns the base64 signature of one request as the SDKs compute it:
// HMAC-SHA256 over the verb, resource type and date in lower case and the
// resource link as it is, each followed by a newline, and an empty line.
func (k Key) Sign(verb, resourceType, resourceLink, date string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(strings.ToLower(verb) + "\n" + strings.ToLower(resourceType) + "\n" + resourceLink + "\n" +
		strings.ToLower(date) + "\n\n"))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Authorization returns the Authorization header value of a signed request
// (URL-encoded "type=master&ver=1.0&sig=...").
func (k Key) Authorization(verb, resourceType, resourceLink, date string) string {
	return url.QueryEscape("type=master&ver=1.0&sig=" + k.Sign(verb, resourceType, resourceLink, date))
}

// authToken is a parsed Authorization header.
type authToken struct {
	typ, ver string
	sig      []byte
}

// parseAuth parses an Authorization header: URL-encoded
// type=master&ver=1.0&sig=BASE64, its parts in any order.
func parseAuth(header string) (authToken, error) {
	if header == "" {
		return authToken{}, errors.New("no Authorization header")
	}
	if len(header) > maxAuthHeader {
		return authToken{}, fmt.Errorf("Authorization header of %d bytes, limit %d", len(header), maxAuthHeader)
	}
	dec, err := url.QueryUnescape(header)
	if err != nil {
		return authToken{}, errors.New("Authorization header: bad URL encoding")
	}
	var t authToken
	var sig string
	seen := 0
	for part := range strings.SplitSeq(dec, "&") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return authToken{}, fmt.Errorf("Authorization header: part %q is not key=value", part)
		}
		switch k {
		case "type":
			t.typ = v
		case "ver":
			t.ver = v
		case "sig":
			sig = v
		default:
			continue
		}
		seen++
	}
	if seen != 3 || t.typ == "" || t.ver == "" || sig == "" {
		return authToken{}, errors.New("Authorization header: want type=master&ver=1.0&sig=<base64 signature>")
	}
	if t.typ != "master" {
		return authToken{}, fmt.Errorf("Authorization header: token type %q: only master keys are supported", t.typ)
	}
	if t.ver != "1.0" {
		return authToken{}, fmt.Errorf("Authorization header: token version %q: want 1.0", t.ver)
	}
	// A '+' of the signature arrives as a space when a client encoded the
	// token with form rules.
	sig = strings.ReplaceAll(sig, " ", "+")
	if t.sig, err = base64.StdEncoding.DecodeString(sig); err != nil || len(t.sig) != sha256.Size {
		return authToken{}, errors.New("Authorization header: sig is not a base64 HMAC-SHA256")
	}
	return t, nil
}

// verify checks a request's signature against the key in constant time,
// and its date against now within MaxClockSkew.
func (k Key) verify(auth, verb, resourceType, resourceLink, date string, now time.Time) error {
	t, err := parseAuth(auth)
	if err != nil {
		return err
	}
	if date == "" {
		return errors.New("no x-ms-date header")
	}
	at, err := time.Parse(time.RFC1123, date)
	if err != nil {
		return fmt.Errorf("x-ms-date %q: want an RFC 1123 date such as %q", date, now.UTC().Format(http1123))
	}
	if d := now.Sub(at); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("x-ms-date %q is %s away from this node's clock; at most %s is accepted", date, d.Round(time.Second), MaxClockSkew)
	}
	want, err := base64.StdEncoding.DecodeString(k.Sign(verb, resourceType, resourceLink, date))
	if err != nil {
		return err
	}
	if !hmac.Equal(t.sig, want) {
		return errors.New("the signature does not match: check the key, and that the request's verb, resource type, resource link and x-ms-date are what was signed")
	}
	return nil
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"
