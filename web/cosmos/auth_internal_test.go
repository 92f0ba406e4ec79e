package cosmos

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sdkVector is a request signed by @azure/cosmos 4.10.1's generateHeaders
// (utils/headers.js) with a key of 64 bytes of 7: the SDK's own computation,
// not this package's.
var sdkVector = struct {
	key, verb, typ, link, date, auth string
}{
	key:  base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)),
	verb: "GET", typ: "docs", link: "dbs/shop/colls/products/docs/p 1",
	date: "Mon, 07 Dec 2026 01:02:03 GMT",
	auth: "type%3Dmaster%26ver%3D1.0%26sig%3Dv5lbTmKoFdsjlEjKok1oBqLfSZVGhKFFO%2BL7%2FKLivhk%3D",
}

func TestKey_Verify(t *testing.T) {
	v := sdkVector
	k, err := ParseKey(v.key)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := time.Parse(time.RFC1123, v.date)
	other, _ := ParseKey(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 64)))
	tests := []struct {
		name                  string
		key                   Key
		auth, verb, typ, link string
		date                  string
		now                   time.Time
		wantErr               string // "" for accepted
	}{
		{name: "the SDK's signature", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at},
		{name: "verb and type in any case", key: k, auth: v.auth, verb: "get", typ: "DOCS", link: v.link, date: v.date, now: at},
		{name: "within the skew", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at.Add(MaxClockSkew - time.Second)},
		{name: "another key", key: other, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "does not match"},
		{name: "another verb", key: k, auth: v.auth, verb: "DELETE", typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "does not match"},
		{name: "another type", key: k, auth: v.auth, verb: v.verb, typ: "colls", link: v.link, date: v.date, now: at, wantErr: "does not match"},
		{name: "another link", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: "dbs/shop/colls/products/docs/p 2", date: v.date, now: at, wantErr: "does not match"},
		{name: "link case matters", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: "dbs/Shop/colls/products/docs/p 1", date: v.date, now: at, wantErr: "does not match"},
		{name: "too late", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at.Add(MaxClockSkew + time.Second), wantErr: "away from"},
		{name: "too early", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at.Add(-MaxClockSkew - time.Second), wantErr: "away from"},
		{name: "no date", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, now: at, wantErr: "no x-ms-date"},
		{name: "bad date", key: k, auth: v.auth, verb: v.verb, typ: v.typ, link: v.link, date: "yesterday", now: at, wantErr: "RFC 1123"},
		{name: "no header", key: k, verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "no Authorization"},
		{name: "resource token", key: k, auth: url.QueryEscape("type=resource&ver=1.0&sig=abc"), verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "only master keys"},
		{name: "short signature", key: k, auth: url.QueryEscape("type=master&ver=1.0&sig=AAAA"), verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "HMAC-SHA256"},
		{name: "huge header", key: k, auth: strings.Repeat("a", maxAuthHeader+1), verb: v.verb, typ: v.typ, link: v.link, date: v.date, now: at, wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.key.verify(tt.auth, tt.verb, tt.typ, tt.link, tt.date, tt.now)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify()=%v, want accepted", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify()=%v, want an error with %q", err, tt.wantErr)
			}
		})
	}
	if got := k.Authorization(v.verb, v.typ, v.link, v.date); got != v.auth {
		t.Fatalf("Authorization()=%s, want the SDK's %s", got, v.auth)
	}
}

func TestParseKey(t *testing.T) {
	for _, tt := range []struct {
		name, key string
		ok        bool
	}{
		{"standard", sdkVector.key, true},
		{"URL-safe", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 24)), true},
		{"too short", base64.StdEncoding.EncodeToString([]byte("short")), false},
		{"not base64", "not a key!", false},
	} {
		if _, err := ParseKey(tt.key); (err == nil) != tt.ok {
			t.Errorf("%s: ParseKey()=%v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// FuzzParseAuth feeds the Authorization parser arbitrary headers: it never
// panics, and what it accepts is a master token of a 32-byte signature that
// round-trips.
func FuzzParseAuth(f *testing.F) {
	f.Add(sdkVector.auth)
	f.Add("type=master&ver=1.0&sig=" + strings.Repeat("A", 43) + "=")
	f.Add("type%3Dmaster%26ver%3D1.0%26sig%3D%zz")
	f.Add("sig=&type=&ver=&x=y")
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := parseAuth(h)
		if err != nil {
			return
		}
		if tok.typ != "master" || tok.ver != "1.0" || len(tok.sig) != 32 {
			t.Fatalf("parseAuth(%q)=%+v: accepted something that is not a master token", h, tok)
		}
		again, err := parseAuth(url.QueryEscape("type=master&ver=1.0&sig=" + base64.StdEncoding.EncodeToString(tok.sig)))
		if err != nil || !bytes.Equal(again.sig, tok.sig) {
			t.Fatalf("the token of %q does not round-trip: %v", h, err)
		}
	})
}

// FuzzParsePath feeds the request path parser arbitrary paths: it never
// panics; what it accepts names at most three resources whose names hold no
// '/', and escaping them again parses to the same resource.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{"/", "/dbs", "/dbs/shop", "/dbs/shop/colls/p/docs", "/dbs/shop/colls/p/docs/a%20b", "/dbs/s/colls/p/pkranges",
		"/dbs/s/colls/p/conflicts/1", "/dbs/s/users/u", "/dbs//colls", "/dbs/a%2Fb", "/dbs/%zz"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := parsePath(p)
		if err != nil {
			return
		}
		for _, name := range []string{r.db, r.coll, r.id} {
			if strings.ContainsAny(name, "/\\?#") {
				t.Fatalf("parsePath(%q) name %q holds a separator", p, name)
			}
		}
		if strings.HasPrefix(r.link, "/") || strings.HasSuffix(r.link, "/") {
			t.Fatalf("parsePath(%q) link %q", p, r.link)
		}
		var segs []string
		for i, s := range strings.Split(r.link, "/") {
			if r.link == "" {
				break
			}
			if i%2 == 1 {
				s = url.PathEscape(s)
			}
			segs = append(segs, s)
		}
		if r.feed {
			segs = append(segs, r.typ)
		}
		again, err := parsePath("/" + strings.Join(segs, "/"))
		if err != nil || again != r {
			t.Fatalf("parsePath(%q)=%+v; escaped again it is %+v, %v", p, r, again, err)
		}
	})
}
