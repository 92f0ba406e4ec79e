package replica_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica"
)

// nested returns a document whose nesting depth (as docs/architecture.md, Items counts it: the
// top-level object is depth 1) is depth, for depth >= 2.
func nested(depth int) string {
	return `{"id":"deep","pk":"a","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
}

// padded returns a valid document of exactly n bytes.
func padded(n int) string {
	head, tail := `{"id":"big","pk":"a","pad":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestParseDocument(t *testing.T) {
	pk := []string{"pk"}
	tests := []struct {
		name     string
		in       string
		pkPath   []string
		wantErr  error // nil, replica.ErrInvalid or replica.ErrTooLarge
		wantID   string
		wantPK   string
		wantBody string // "" means the input itself, trimmed
	}{
		{name: "minimal", in: `{"id":"a","pk":"p"}`, pkPath: pk, wantID: "a", wantPK: "p"},
		{name: "no pk path", in: `{"id":"a"}`, wantID: "a"},
		{name: "surrounding whitespace trimmed", in: " \t\r\n{\"id\":\"a\",\"pk\":\"p\"}\n ", pkPath: pk, wantID: "a", wantPK: "p", wantBody: `{"id":"a","pk":"p"}`},
		{name: "whitespace inside kept", in: `{ "id" : "a" , "pk" : "p" }`, pkPath: pk, wantID: "a", wantPK: "p"},
		{name: "other fields kept", in: `{"id":"a","pk":"p","n":1.5e3,"o":{"x":[1,null,true]},"s":"\u00e9"}`, pkPath: pk, wantID: "a", wantPK: "p"},
		{name: "all system properties dropped", in: `{"_ts":1,"id":"a","_etag":"\"x\"","pk":"p","_lsn":3,"_crts":4,"_tentative":true,"v":1}`, pkPath: pk, wantID: "a", wantPK: "p", wantBody: `{"id":"a","pk":"p","v":1}`},
		{name: "system property with escaped key dropped", in: `{"id":"a","\u005fts":1,"pk":"p"}`, pkPath: pk, wantID: "a", wantPK: "p", wantBody: `{"id":"a","pk":"p"}`},
		{name: "system property last", in: `{"id":"a","pk":"p","_etag":"x"}`, pkPath: pk, wantID: "a", wantPK: "p", wantBody: `{"id":"a","pk":"p"}`},
		{name: "only system properties besides id", in: `{"_ts":1,"id":"a","_lsn":2}`, wantID: "a", wantBody: `{"id":"a"}`},
		{name: "nested system property names kept", in: `{"id":"a","o":{"_ts":1,"_etag":"e"}}`, wantID: "a"},
		{name: "system-like names kept", in: `{"id":"a","_TS":1,"_ts_":2,"ts":3}`, wantID: "a"},
		{name: "escaped id key", in: `{"\u0069d":"a","pk":"p"}`, pkPath: pk, wantID: "a", wantPK: "p"},
		{name: "escapes in id", in: `{"id":"caf\u00e9 \"q\" \u263a","pk":"p"}`, pkPath: pk, wantID: "café \"q\" ☺", wantPK: "p"},
		{name: "id 1023 bytes", in: `{"id":"` + strings.Repeat("a", 1023) + `"}`, wantID: strings.Repeat("a", 1023)},
		{name: "id 1023 bytes multi-byte", in: `{"id":"` + strings.Repeat("é", 511) + `a"}`, wantID: strings.Repeat("é", 511) + "a"},
		{name: "id with space percent plus", in: `{"id":"a b%2F+c"}`, wantID: "a b%2F+c"},
		{name: "nested pk", in: `{"id":"a","t":{"r":"eu"}}`, pkPath: []string{"t", "r"}, wantID: "a", wantPK: "eu"},
		{name: "pk escaped value", in: `{"id":"a","pk":"\u0041\n"}`, pkPath: pk, wantID: "a", wantPK: "A\n"},
		{name: "pk integer", in: `{"id":"a","pk":42}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "pk negative float", in: `{"id":"a","pk":-1.5e2}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "pk path with slash in key", in: `{"id":"a","x/y":"v"}`, pkPath: []string{"x/y"}, wantID: "a", wantPK: "v"},
		{name: "pk is id", in: `{"id":"a"}`, pkPath: []string{"id"}, wantID: "a", wantPK: "a"},
		{name: "pk 1023 bytes", in: `{"id":"a","pk":"` + strings.Repeat("p", 1023) + `"}`, pkPath: pk, wantID: "a", wantPK: strings.Repeat("p", 1023)},
		{name: "same key in sibling objects", in: `{"id":"a","o":{"x":1},"p":{"x":2},"l":[{"x":1},{"x":2}]}`, wantID: "a"},
		{name: "same key at different depths", in: `{"id":"a","x":{"x":{"x":1}}}`, wantID: "a"},
		{name: "many distinct keys", in: `{"id":"a","o":{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10}}`, wantID: "a"},
		{name: "surrogate pair in id", in: `{"id":"a\ud83d\ude00b"}`, wantID: "a\U0001F600b"},
		{name: "lone surrogate in a value kept", in: `{"id":"a","v":"\ud800"}`, wantID: "a"},
		{name: "depth 128", in: nested(128), pkPath: pk, wantID: "deep", wantPK: "a"},
		{name: "brackets in strings do not count", in: `{"id":"a","s":"` + strings.Repeat("[{", 200) + `"}`, wantID: "a"},
		{name: "exactly MaxDocumentSize", in: padded(replica.MaxDocumentSize), pkPath: pk, wantID: "big", wantPK: "a"},

		{name: "empty", in: ``, wantErr: replica.ErrInvalid},
		{name: "whitespace only", in: " \n\t ", wantErr: replica.ErrInvalid},
		{name: "malformed", in: `{"id":"a",`, wantErr: replica.ErrInvalid},
		{name: "single quotes", in: `{'id':'a'}`, wantErr: replica.ErrInvalid},
		{name: "trailing comma", in: `{"id":"a",}`, wantErr: replica.ErrInvalid},
		{name: "trailing data", in: `{"id":"a"} x`, wantErr: replica.ErrInvalid},
		{name: "two objects", in: `{"id":"a"}{"id":"b"}`, wantErr: replica.ErrInvalid},
		{name: "array", in: `[{"id":"a"}]`, wantErr: replica.ErrInvalid},
		{name: "string", in: `"a"`, wantErr: replica.ErrInvalid},
		{name: "number", in: `42`, wantErr: replica.ErrInvalid},
		{name: "null", in: `null`, wantErr: replica.ErrInvalid},
		{name: "true", in: `true`, wantErr: replica.ErrInvalid},
		{name: "empty object", in: `{}`, wantErr: replica.ErrInvalid},
		{name: "missing id", in: `{"pk":"p"}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "nested id only", in: `{"o":{"id":"a"}}`, wantErr: replica.ErrInvalid},
		{name: "id number", in: `{"id":5}`, wantErr: replica.ErrInvalid},
		{name: "id null", in: `{"id":null}`, wantErr: replica.ErrInvalid},
		{name: "id object", in: `{"id":{"a":1}}`, wantErr: replica.ErrInvalid},
		{name: "id empty", in: `{"id":""}`, wantErr: replica.ErrInvalid},
		{name: "id 1024 bytes", in: `{"id":"` + strings.Repeat("a", 1024) + `"}`, wantErr: replica.ErrInvalid},
		{name: "id 1024 bytes multi-byte", in: `{"id":"` + strings.Repeat("é", 512) + `"}`, wantErr: replica.ErrInvalid},
		{name: "id with slash", in: `{"id":"a/b"}`, wantErr: replica.ErrInvalid},
		{name: "id with escaped slash", in: `{"id":"a\/b"}`, wantErr: replica.ErrInvalid},
		{name: "id with backslash", in: `{"id":"a\\b"}`, wantErr: replica.ErrInvalid},
		{name: "id with question mark", in: `{"id":"a?b"}`, wantErr: replica.ErrInvalid},
		{name: "id with hash", in: `{"id":"a#b"}`, wantErr: replica.ErrInvalid},
		{name: "id with newline", in: `{"id":"a\nb"}`, wantErr: replica.ErrInvalid},
		{name: "id with NUL", in: `{"id":"a\u0000b"}`, wantErr: replica.ErrInvalid},
		{name: "id with DEL", in: `{"id":"a\u007fb"}`, wantErr: replica.ErrInvalid},
		{name: "id with C1 control", in: `{"id":"a\u0085b"}`, wantErr: replica.ErrInvalid},
		{name: "duplicate id", in: `{"id":"a","id":"b"}`, wantErr: replica.ErrInvalid},
		{name: "duplicate id via escape", in: `{"id":"a","\u0069d":"b"}`, wantErr: replica.ErrInvalid},
		{name: "duplicate other key", in: `{"id":"a","x":1,"x":2}`, wantErr: replica.ErrInvalid},
		{name: "duplicate system property", in: `{"id":"a","_ts":1,"_ts":2}`, wantErr: replica.ErrInvalid},
		{name: "nested duplicate key", in: `{"id":"a","o":{"x":1,"x":2}}`, wantErr: replica.ErrInvalid},
		{name: "deeply nested duplicate key", in: `{"id":"a","o":{"p":{"q":{"x":1,"y":2,"x":3}}}}`, wantErr: replica.ErrInvalid},
		{name: "duplicate key in an array element", in: `{"id":"a","l":[{"x":1},{"y":1,"y":2}]}`, wantErr: replica.ErrInvalid},
		{name: "duplicate key via escape, nested", in: `{"id":"a","o":{"x":1,"\u0078":2}}`, wantErr: replica.ErrInvalid},
		{name: "duplicate key past eight members", in: `{"id":"a","o":{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k2":10}}`, wantErr: replica.ErrInvalid},
		{name: "lone high surrogate in id", in: `{"id":"a\ud800b"}`, wantErr: replica.ErrInvalid},
		{name: "lone low surrogate in id", in: `{"id":"a\udc00b"}`, wantErr: replica.ErrInvalid},
		{name: "high surrogate at the end of id", in: `{"id":"a\ud800"}`, wantErr: replica.ErrInvalid},
		{name: "two high surrogates in id", in: `{"id":"a\ud800\ud800"}`, wantErr: replica.ErrInvalid},
		{name: "lone surrogate in pk", in: `{"id":"a","pk":"\udfff"}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "lone surrogate in a key", in: `{"id":"a","o":{"\ud800":1}}`, wantErr: replica.ErrInvalid},
		{name: "invalid UTF-8 in id", in: "{\"id\":\"a\xff\"}", wantErr: replica.ErrInvalid},
		{name: "invalid UTF-8 in value", in: "{\"id\":\"a\",\"v\":\"\xc3\x28\"}", wantErr: replica.ErrInvalid},
		{name: "invalid UTF-8 in key", in: "{\"id\":\"a\",\"\xed\xa0\x80\":1}", wantErr: replica.ErrInvalid},
		{name: "raw control character in string", in: "{\"id\":\"a\",\"v\":\"\x01\"}", wantErr: replica.ErrInvalid},
		{name: "depth 129", in: nested(129), pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "depth 10000", in: nested(10000), wantErr: replica.ErrInvalid},
		{name: "missing pk", in: `{"id":"a"}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "null pk", in: `{"id":"a","pk":null}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "bool pk", in: `{"id":"a","pk":true}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "object pk", in: `{"id":"a","pk":{}}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "array pk", in: `{"id":"a","pk":["p"]}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "pk 1024 bytes", in: `{"id":"a","pk":"` + strings.Repeat("p", 1024) + `"}`, pkPath: pk, wantErr: replica.ErrInvalid},
		{name: "nested pk parent not an object", in: `{"id":"a","t":"eu"}`, pkPath: []string{"t", "r"}, wantErr: replica.ErrInvalid},
		{name: "nested pk missing", in: `{"id":"a","t":{}}`, pkPath: []string{"t", "r"}, wantErr: replica.ErrInvalid},
		{name: "empty pk path", in: `{"id":"a"}`, pkPath: []string{}, wantErr: replica.ErrInvalid},
		{name: "over MaxDocumentSize", in: padded(replica.MaxDocumentSize + 1), pkPath: pk, wantErr: replica.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := replica.ParseDocument([]byte(tt.in), tt.pkPath)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseDocument() err=%v, want %v", err, tt.wantErr)
				}
				if err.Error() == tt.wantErr.Error() {
					t.Fatalf("ParseDocument() err=%q says nothing about what was wrong", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDocument() err=%v, want nil", err)
			}
			if got, want := d.ID, tt.wantID; got != want {
				t.Fatalf("ID=%q, want %q", got, want)
			}
			if got, want := d.PK, tt.wantPK; got != want {
				t.Fatalf("PK=%q, want %q", got, want)
			}
			wantBody := tt.wantBody
			if wantBody == "" {
				wantBody = strings.Trim(tt.in, " \t\r\n")
			}
			if got := string(d.Body); got != wantBody {
				t.Fatalf("Body=%.200s, want %.200s", got, wantBody)
			}
		})
	}
}

// TestParseDocument_BodyNotAliased checks that the Document does not share
// memory with the caller's buffer, which the HTTP layer reuses.
func TestParseDocument_BodyNotAliased(t *testing.T) {
	in := []byte(`{"id":"a","v":1}`)
	d, err := replica.ParseDocument(in, nil)
	if err != nil {
		t.Fatalf("ParseDocument() err=%v", err)
	}
	copy(in, bytes.Repeat([]byte{'X'}, len(in)))
	if got, want := string(d.Body), `{"id":"a","v":1}`; got != want {
		t.Fatalf("Body=%s after the input changed, want %s", got, want)
	}
}

// TestParseDocument_NestedPKDuplicate: the partition key value the node
// indexes must be the value every JSON reader sees in the stored body.
//
// Regression: partitionKeyValue used to take the first occurrence of a
// duplicate key on a nested partition key path while encoding/json (and
// every reader of the stored body) takes the last, so {"t":{"r":"eu","r":"us"}}
// was indexed and scoped under "eu" but read as "us". Fixed in 68f8051 by
// rejecting duplicates on the path; either answer passes here.
func TestParseDocument_NestedPKDuplicate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		path []string
	}{
		{name: "duplicate pk segment", in: `{"id":"a","t":{"r":"eu","r":"us"}}`, path: []string{"t", "r"}},
		{name: "duplicate parent object", in: `{"id":"a","t":{"x":{"r":"eu"},"x":{"r":"us"}}}`, path: []string{"t", "x", "r"}},
		{name: "first not an object", in: `{"id":"a","t":{"x":1,"x":{"r":"us"}}}`, path: []string{"t", "x", "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			d, err := replica.ParseDocument([]byte(tt.in), path)
			if err != nil {
				if !errors.Is(err, replica.ErrInvalid) {
					t.Fatalf("ParseDocument() err=%v, want nil or ErrInvalid", err)
				}
				return // rejecting the ambiguity is a fine answer
			}
			want, ok := pkFromDecoded(t, d.Body, path)
			if !ok {
				t.Fatalf("decoded body has no partition key value at %v", path)
			}
			if d.PK != want {
				t.Fatalf("PK=%q, want %q (the value a JSON decoder reads from Body)", d.PK, want)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr bool
	}{
		{name: "simple", id: "a"},
		{name: "space", id: "a b"},
		{name: "percent and plus", id: "50%+1"},
		{name: "dots", id: ".."},
		{name: "punctuation", id: `a;b,c:d@e&f=g'h"i~j`},
		{name: "non-ASCII", id: "日本語-café-🎉"},
		{name: "1023 bytes", id: strings.Repeat("x", 1023)},
		{name: "empty", id: "", wantErr: true},
		{name: "1024 bytes", id: strings.Repeat("x", 1024), wantErr: true},
		{name: "slash", id: "a/b", wantErr: true},
		{name: "backslash", id: `a\b`, wantErr: true},
		{name: "question mark", id: "a?", wantErr: true},
		{name: "hash", id: "#a", wantErr: true},
		{name: "NUL", id: "a\x00", wantErr: true},
		{name: "tab", id: "a\tb", wantErr: true},
		{name: "unit separator", id: "a\x1fb", wantErr: true},
		{name: "DEL", id: "a\x7fb", wantErr: true},
		{name: "C1 control", id: "a\u0085b", wantErr: true},
		{name: "last C1 control", id: "a\u009fb", wantErr: true},
		{name: "invalid UTF-8", id: "a\xff", wantErr: true},
		{name: "truncated UTF-8", id: "caf\xc3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := replica.ValidateID(tt.id)
			if got, want := err != nil, tt.wantErr; got != want {
				t.Fatalf("ValidateID(%q) err=%v, want error %v", tt.id, err, want)
			}
			if err != nil && !errors.Is(err, replica.ErrInvalid) {
				t.Fatalf("ValidateID(%q) err=%v, want it to wrap ErrInvalid", tt.id, err)
			}
		})
	}
}

func TestAppendWithSystem(t *testing.T) {
	tests := []struct {
		name string
		dst  string
		body string
		sp   replica.SystemProps
		want string
	}{
		{name: "empty object", body: `{}`, sp: replica.SystemProps{TS: 7, ETag: `"v1"`},
			want: `{"_ts":7,"_etag":"\"v1\""}`},
		{name: "one property", body: `{"id":"a"}`, sp: replica.SystemProps{TS: 7, ETag: `"v1"`},
			want: `{"id":"a","_ts":7,"_etag":"\"v1\""}`},
		{name: "tentative", body: `{"id":"a"}`, sp: replica.SystemProps{TS: 7, ETag: `"v1"`, Tentative: true},
			want: `{"id":"a","_ts":7,"_etag":"\"v1\"","_tentative":true}`},
		{name: "confirmed", body: `{"id":"a"}`, sp: replica.SystemProps{TS: 7, ETag: `"v1"`, LSN: 12, CRTS: 9},
			want: `{"id":"a","_ts":7,"_etag":"\"v1\"","_lsn":12,"_crts":9}`},
		{name: "whitespace around", body: " {\"id\":\"a\"} \n", sp: replica.SystemProps{TS: 1, ETag: `"e"`},
			want: `{"id":"a","_ts":1,"_etag":"\"e\""}`},
		{name: "whitespace inside empty object", body: "{ \n }", sp: replica.SystemProps{TS: 1, ETag: `"e"`},
			want: "{ \n \"_ts\":1,\"_etag\":\"\\\"e\\\"\"}"},
		{name: "nil body", body: "", sp: replica.SystemProps{TS: 1, ETag: `"e"`},
			want: `{"_ts":1,"_etag":"\"e\""}`},
		{name: "appends to dst", dst: `[`, body: `{"id":"a"}`, sp: replica.SystemProps{TS: 1, ETag: `"e"`},
			want: `[{"id":"a","_ts":1,"_etag":"\"e\""}`},
		{name: "etag needing escapes", body: `{"id":"a"}`, sp: replica.SystemProps{TS: 1, ETag: "\"a\\b\u00e9\""},
			want: `{"id":"a","_ts":1,"_etag":"\"a\\bé\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(replica.AppendWithSystem([]byte(tt.dst), []byte(tt.body), tt.sp))
			if got != tt.want {
				t.Fatalf("AppendWithSystem()=%s, want %s", got, tt.want)
			}
			if tt.dst == "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(got), &m); err != nil {
					t.Fatalf("AppendWithSystem()=%s is not valid JSON: %v", got, err)
				}
				if m["_etag"] != tt.sp.ETag {
					t.Fatalf("_etag=%v, want %q", m["_etag"], tt.sp.ETag)
				}
			}
		})
	}
}

func TestConflictPolicy_Normalize(t *testing.T) {
	tests := []struct {
		name    string
		in      replica.ConflictPolicy
		want    replica.ConflictPolicy
		wantErr bool
	}{
		{name: "zero is lww on _ts", in: replica.ConflictPolicy{}, want: replica.ConflictPolicy{Mode: "lww", Path: "/_ts"}},
		{name: "lww default path", in: replica.ConflictPolicy{Mode: "lww"}, want: replica.ConflictPolicy{Mode: "lww", Path: "/_ts"}},
		{name: "lww custom path", in: replica.ConflictPolicy{Mode: "lww", Path: "/version"}, want: replica.ConflictPolicy{Mode: "lww", Path: "/version"}},
		{name: "lww nested path", in: replica.ConflictPolicy{Mode: "lww", Path: "/a/b"}, want: replica.ConflictPolicy{Mode: "lww", Path: "/a/b"}},
		{name: "merge", in: replica.ConflictPolicy{Mode: "merge"}, want: replica.ConflictPolicy{Mode: "merge"}},
		{name: "manual", in: replica.ConflictPolicy{Mode: "manual"}, want: replica.ConflictPolicy{Mode: "manual"}},
		{name: "custom", in: replica.ConflictPolicy{Mode: "custom", Resolver: "cart-merge"}, want: replica.ConflictPolicy{Mode: "custom", Resolver: "cart-merge"}},
		{name: "lww bad path", in: replica.ConflictPolicy{Mode: "lww", Path: "version"}, wantErr: true},
		{name: "lww with resolver", in: replica.ConflictPolicy{Mode: "lww", Resolver: "r"}, wantErr: true},
		{name: "merge with path", in: replica.ConflictPolicy{Mode: "merge", Path: "/_ts"}, wantErr: true},
		{name: "merge with resolver", in: replica.ConflictPolicy{Mode: "merge", Resolver: "r"}, wantErr: true},
		{name: "manual with path", in: replica.ConflictPolicy{Mode: "manual", Path: "/x"}, wantErr: true},
		{name: "custom without resolver", in: replica.ConflictPolicy{Mode: "custom"}, wantErr: true},
		{name: "custom bad resolver name", in: replica.ConflictPolicy{Mode: "custom", Resolver: "a/b"}, wantErr: true},
		{name: "custom resolver starting with dot", in: replica.ConflictPolicy{Mode: "custom", Resolver: ".r"}, wantErr: true},
		{name: "custom with path", in: replica.ConflictPolicy{Mode: "custom", Resolver: "r", Path: "/x"}, wantErr: true},
		{name: "unknown mode", in: replica.ConflictPolicy{Mode: "newest"}, wantErr: true},
		{name: "mode is case sensitive", in: replica.ConflictPolicy{Mode: "LWW"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Normalize() err=%v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, replica.ErrInvalid) {
					t.Fatalf("Normalize() err=%v, want it to wrap ErrInvalid", err)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Normalize()=%+v, want %+v", got, tt.want)
			}
			again, err := got.Normalize()
			if err != nil || again != got {
				t.Fatalf("Normalize() twice=%+v, %v, want %+v", again, err, got)
			}
		})
	}
}

func TestContainer_Normalize(t *testing.T) {
	lww := replica.ConflictPolicy{Mode: "lww", Path: "/_ts"}
	tests := []struct {
		name    string
		in      replica.Container
		want    replica.Container
		wantErr bool
	}{
		{name: "defaults", in: replica.Container{Name: "orders", PartitionKey: "/territory"},
			want: replica.Container{Name: "orders", PartitionKey: "/territory", ConflictPolicy: lww}},
		{name: "name characters", in: replica.Container{Name: "a-Z_0.9", PartitionKey: "/p"},
			want: replica.Container{Name: "a-Z_0.9", PartitionKey: "/p", ConflictPolicy: lww}},
		{name: "name 255 bytes", in: replica.Container{Name: strings.Repeat("n", 255), PartitionKey: "/p"},
			want: replica.Container{Name: strings.Repeat("n", 255), PartitionKey: "/p", ConflictPolicy: lww}},
		{name: "nested pk", in: replica.Container{Name: "c", PartitionKey: "/a/b"},
			want: replica.Container{Name: "c", PartitionKey: "/a/b", ConflictPolicy: lww}},
		{name: "system property below the top level", in: replica.Container{Name: "c", PartitionKey: "/a/_ts"},
			want: replica.Container{Name: "c", PartitionKey: "/a/_ts", ConflictPolicy: lww}},
		{name: "merge kept", in: replica.Container{Name: "c", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: "merge"}},
			want: replica.Container{Name: "c", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: "merge"}}},
		{name: "empty name", in: replica.Container{PartitionKey: "/p"}, wantErr: true},
		{name: "name 256 bytes", in: replica.Container{Name: strings.Repeat("n", 256), PartitionKey: "/p"}, wantErr: true},
		{name: "name with slash", in: replica.Container{Name: "a/b", PartitionKey: "/p"}, wantErr: true},
		{name: "name with space", in: replica.Container{Name: "a b", PartitionKey: "/p"}, wantErr: true},
		{name: "name starting with dot", in: replica.Container{Name: ".c", PartitionKey: "/p"}, wantErr: true},
		{name: "non-ASCII name", in: replica.Container{Name: "café", PartitionKey: "/p"}, wantErr: true},
		{name: "missing pk", in: replica.Container{Name: "c"}, wantErr: true},
		{name: "pk without slash", in: replica.Container{Name: "c", PartitionKey: "p"}, wantErr: true},
		{name: "pk with empty segment", in: replica.Container{Name: "c", PartitionKey: "/a//b"}, wantErr: true},
		{name: "pk _ts", in: replica.Container{Name: "c", PartitionKey: "/_ts"}, wantErr: true},
		{name: "pk _etag", in: replica.Container{Name: "c", PartitionKey: "/_etag"}, wantErr: true},
		{name: "pk _lsn", in: replica.Container{Name: "c", PartitionKey: "/_lsn"}, wantErr: true},
		{name: "pk _crts", in: replica.Container{Name: "c", PartitionKey: "/_crts"}, wantErr: true},
		{name: "pk under _tentative", in: replica.Container{Name: "c", PartitionKey: "/_tentative/x"}, wantErr: true},
		{name: "bad policy", in: replica.Container{Name: "c", PartitionKey: "/p", ConflictPolicy: replica.ConflictPolicy{Mode: "x"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Normalize() err=%v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, replica.ErrInvalid) {
					t.Fatalf("Normalize() err=%v, want it to wrap ErrInvalid", err)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Normalize()=%+v, want %+v", got, tt.want)
			}
		})
	}
}

// systemProperties are the names docs/architecture.md, Items reserves.
var systemProperties = []string{"_ts", "_etag", "_lsn", "_crts", "_tentative"}

// fuzzPKPaths are the partition key paths every fuzz input is parsed with.
var fuzzPKPaths = [][]string{nil, {"pk"}, {"a", "b"}}

func FuzzParseDocument(f *testing.F) {
	seeds := []string{
		`{"id":"a","pk":"p"}`,
		`{"id":"a","pk":1}`,
		`{"id":"a","pk":-0.5e-3,"n":null,"b":[true,false]}`,
		`{"id":"a","a":{"b":"x"},"pk":"p"}`,
		`{"id":"a","a":{"b":12},"pk":"p"}`,
		// Regression seed, see TestParseDocument_NestedPKDuplicate.
		`{"id":"a","a":{"b":"x","b":"y"},"pk":"p"}`,
		`{"id":"a","a":{"c":{"b":"x"}},"pk":"p"}`,
		`{"\u0069d":"a","\u0070k":"p"}`,
		`{"id":"\u0061\u00e9\ud83c\udf89","pk":"\"\\\/\b\f\n\r\t"}`,
		`{"id":"a","\u005fts":1,"_etag":"x","_lsn":2,"_crts":3,"_tentative":true,"pk":"p"}`,
		`{"_ts":1,"id":"a"}`,
		`{"id":"a","_ts":1}`,
		`{"_tentative":false}`,
		`{"id":"a","o":{"_ts":1},"pk":"p"}`,
		`  {  "id" : "a" ,  "pk" : "p" , "x" : [ 1 , 2 ] }  `,
		"{\n\t\"id\": \"a\",\r\n\t\"pk\": \"p\"\n}\n",
		`{"id":"a","id":"b"}`,
		`{"id":"a","\u0069d":"b"}`,
		`{"id":"","pk":"p"}`,
		`{"id":"a/b"}`,
		`{"id":"a\u0001"}`,
		`{"id":5,"pk":"p"}`,
		`{"id":"a","pk":null}`,
		`{"id":"a","s":"[[[{{{"}`,
		`{"id":"a","s":"\"}"}`,
		`{"id":"a","s":"\ud800"}`,
		nested(128),
		nested(129),
		`[]`, `"x"`, `42`, `null`, `{}`, `{`, `}`, `{"id":"a",}`, `{"id":"a"}x`, `{"id":"a"}{}`,
		"{\"id\":\"a\xff\"}",
		"\xef\xbb\xbf{\"id\":\"a\"}",
		`{"id":"a","n":1e999}`,
		`{"id":"a","n":12345678901234567890123}`,
		`{"id":"a","pk":012}`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, pk := range fuzzPKPaths {
			want := checkParse(t, in, pk)

			// Whitespace around the input changes nothing.
			around := append(append([]byte(" \t\r\n"), in...), "\n \t"...)
			if len(around) <= replica.MaxDocumentSize {
				sameOutcome(t, "whitespace around", in, want, checkParse(t, around, pk))
			}

			// The input split in two halves, joined by whitespace. A raw
			// split may land inside a token, so only the properties hold.
			mid := len(in) / 2
			checkParse(t, joinWS(in[:mid], in[mid:]), pk)

			// Split at the structural boundary nearest the middle, where
			// JSON allows whitespace: the outcome must not change.
			if cut, ok := boundary(in, mid); ok && want.err == nil {
				split := joinWS(in[:cut], in[cut:])
				if len(split) <= replica.MaxDocumentSize {
					sameOutcome(t, "split at a boundary", in, want, checkParse(t, split, pk))
				}
			}
		}
	})
}

type parseOutcome struct {
	doc replica.Document
	err error
	obj map[string]any // Body decoded, on success
}

func joinWS(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b)+4)
	out = append(out, a...)
	out = append(out, " \r\n\t"...)
	return append(out, b...)
}

// boundary returns the position just after the structural character
// ({ } [ ] , :) outside strings nearest to mid, for input that is valid JSON.
func boundary(in []byte, mid int) (int, bool) {
	best, found := 0, false
	inString := false
	for i := 0; i < len(in); i++ {
		c := in[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '}', '[', ']', ',', ':':
			if !found || abs(i+1-mid) < abs(best-mid) {
				best, found = i+1, true
			}
		}
	}
	return best, found
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func sameOutcome(t *testing.T, what string, in []byte, want, got parseOutcome) {
	t.Helper()
	if (got.err == nil) != (want.err == nil) ||
		errors.Is(got.err, replica.ErrTooLarge) != errors.Is(want.err, replica.ErrTooLarge) {
		t.Fatalf("%s: ParseDocument(%q) err=%v, want the outcome of the original, err=%v", what, in, got.err, want.err)
	}
	if want.err != nil {
		return
	}
	if got.doc.ID != want.doc.ID || got.doc.PK != want.doc.PK || !reflect.DeepEqual(got.obj, want.obj) {
		t.Fatalf("%s: ParseDocument(%q)=%+v, want %+v", what, in, got.doc, want.doc)
	}
}

// checkParse runs ParseDocument and checks the properties that hold for
// every input.
func checkParse(t *testing.T, in []byte, pkPath []string) parseOutcome {
	t.Helper()
	orig := bytes.Clone(in)
	d, err := replica.ParseDocument(in, pkPath)
	if !bytes.Equal(in, orig) {
		t.Fatalf("ParseDocument(%q) modified its input to %q", orig, in)
	}
	if err != nil {
		if !errors.Is(err, replica.ErrInvalid) && !errors.Is(err, replica.ErrTooLarge) {
			t.Fatalf("ParseDocument(%q) err=%v, want it to wrap ErrInvalid or ErrTooLarge", in, err)
		}
		if reason := acceptable(in, pkPath); reason == "" {
			t.Fatalf("ParseDocument(%q, %q) err=%v, but the document is valid per docs/architecture.md, Items", in, pkPath, err)
		}
		return parseOutcome{err: err}
	}

	// The body is a valid JSON object.
	if !json.Valid(d.Body) {
		t.Fatalf("ParseDocument(%q).Body=%q is not valid JSON", in, d.Body)
	}
	if b := bytes.TrimLeft(d.Body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		t.Fatalf("ParseDocument(%q).Body=%q is not a JSON object", in, d.Body)
	}
	got := decodeObject(t, d.Body)
	keys := topLevelKeys(t, d.Body)
	for _, p := range systemProperties {
		if slices.Contains(keys, p) {
			t.Fatalf("ParseDocument(%q).Body=%q keeps system property %s", in, d.Body, p)
		}
	}

	// It is the input minus the system properties.
	if reason := acceptable(in, pkPath); reason != "" {
		t.Fatalf("ParseDocument(%q, %q) accepted a document that is invalid: %s", in, pkPath, reason)
	}
	want := decodeObject(t, in)
	for _, p := range systemProperties {
		delete(want, p)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDocument(%q).Body decodes to %v, want %v", in, got, want)
	}
	if id, ok := got["id"].(string); !ok || id != d.ID {
		t.Fatalf("ParseDocument(%q).ID=%q, body id=%#v", in, d.ID, got["id"])
	}
	if pkPath != nil {
		if pk, ok := pkFromDecoded(t, d.Body, pkPath); !ok || pk != d.PK {
			t.Fatalf("ParseDocument(%q, %q).PK=%q, body has %q (found %v)", in, pkPath, d.PK, pk, ok)
		}
	} else if d.PK != "" {
		t.Fatalf("ParseDocument(%q, nil).PK=%q, want empty", in, d.PK)
	}

	// Idempotent.
	again, err := replica.ParseDocument(d.Body, pkPath)
	if err != nil {
		t.Fatalf("ParseDocument(Body=%q) err=%v, want nil (first input %q)", d.Body, err, in)
	}
	if again.ID != d.ID || again.PK != d.PK || !bytes.Equal(again.Body, d.Body) {
		t.Fatalf("ParseDocument(Body)=%+v, want %+v", again, d)
	}
	return parseOutcome{doc: d, obj: got}
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// topLevelKeys lists an object's keys, duplicates included, decoded by
// encoding/json's tokenizer.
func topLevelKeys(t *testing.T, b []byte) []string {
	t.Helper()
	keys, _, err := scanMembers(b)
	if err != nil {
		t.Fatalf("scan %q: %v", b, err)
	}
	return keys
}

// scanMembers lists an object's keys and raw values in order, duplicates
// included.
func scanMembers(b []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	var keys []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("key %v is not a string", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values, nil
}

// depthOf returns the nesting depth of valid JSON, the top level being 1.
func depthOf(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	level, depth := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return depth
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			level++
			depth = max(depth, level)
		case json.Delim('}'), json.Delim(']'):
			level--
		}
	}
}

// acceptable is a reference validator built on encoding/json: it returns ""
// for a document docs/architecture.md, Items accepts and the reason otherwise.
func acceptable(in []byte, pkPath []string) string {
	if len(in) > replica.MaxDocumentSize {
		return "too large"
	}
	if !utf8.Valid(in) {
		return "invalid UTF-8"
	}
	if !json.Valid(in) {
		return "invalid JSON"
	}
	if b := bytes.TrimLeft(in, " \t\r\n"); b[0] != '{' {
		return "not an object"
	}
	if depthOf(in) > replica.MaxDepth {
		return "too deep"
	}
	if _, _, err := scanMembers(in); err != nil {
		return "tokenizer: " + err.Error()
	}
	if reason := badKeys(json.RawMessage(in)); reason != "" {
		return reason
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(in, &m); err != nil {
		return "decode: " + err.Error()
	}
	var id string
	if err := json.Unmarshal(m["id"], &id); err != nil || m["id"] == nil || m["id"][0] != '"' {
		return "id not a string"
	}
	if replica.ValidateID(id) != nil {
		return "bad id"
	}
	if loneSurrogate(m["id"], id) {
		return "lone surrogate in id"
	}
	if pkPath == nil {
		return ""
	}
	// A key repeated on the way to the partition key makes its value
	// ambiguous (decoders take the last, a streaming reader the first).
	obj := json.RawMessage(in)
	for _, seg := range pkPath {
		keys, values, err := scanMembers(obj)
		if err != nil {
			return "no partition key"
		}
		n := 0
		for i, k := range keys {
			if k == seg {
				n++
				obj = values[i]
			}
		}
		if n > 1 {
			return "duplicate key on the partition key path"
		}
	}
	v, ok := pathValue(in, pkPath)
	if !ok {
		return "no partition key"
	}
	switch v := v.(type) {
	case string:
		if raw, _ := pathRaw(in, pkPath); loneSurrogate(raw, v) {
			return "lone surrogate in the partition key"
		}
		if len(v) > replica.MaxIDLength {
			return "partition key too long"
		}
	default:
		return "partition key not a string"
	}
	return ""
}

func pathValue(b []byte, path []string) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	for _, seg := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return v, true
}

// pkFromDecoded returns the partition key value a JSON decoder reads from
// body, in ParseDocument's canonical text.
func pkFromDecoded(t *testing.T, body []byte, path []string) (string, bool) {
	t.Helper()
	v, ok := pathValue(body, path)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	}
	return "", false
}

// BenchmarkParseDocument validates a 1 KiB document and extracts its id and
// partition key, what every write does before it queues for the writer.
func BenchmarkParseDocument(b *testing.B) {
	doc := []byte(`{"id":"d000000042","tenant":"t10","price":42.42,"qty":0,"tags":["a","b"],"note":"` + strings.Repeat("x", 940) + `"}`)
	pk := []string{"tenant"}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := replica.ParseDocument(doc, pk); err != nil {
			b.Fatal(err)
		}
	}
}

// badKeys finds, in any object at any depth of valid JSON v, a key that
// appears twice or that encoding/json decodes with more U+FFFD than its
// text holds (a lone surrogate escape).
func badKeys(v json.RawMessage) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	switch {
	case len(v) > 0 && v[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.Token()
		seen := map[string]bool{}
		for dec.More() {
			off := dec.InputOffset()
			tok, err := dec.Token()
			if err != nil {
				return "tokenizer: " + err.Error()
			}
			k := tok.(string)
			raw := bytes.TrimLeft(v[off:dec.InputOffset()], " \t\r\n,")
			if loneSurrogate(raw, k) {
				return "lone surrogate in key " + k
			}
			if seen[k] {
				return "duplicate key " + k
			}
			seen[k] = true
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return "tokenizer: " + err.Error()
			}
			if r := badKeys(val); r != "" {
				return r
			}
		}
	case len(v) > 0 && v[0] == '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(v, &elems); err != nil {
			return "decode: " + err.Error()
		}
		for _, e := range elems {
			if r := badKeys(e); r != "" {
				return r
			}
		}
	}
	return ""
}

// loneSurrogate reports whether decoded, the value of the JSON string raw,
// holds more U+FFFD than raw spells out (literally or as \ufffd).
func loneSurrogate(raw []byte, decoded string) bool {
	n := 0
	for i := 0; i < len(raw); i++ {
		switch {
		case raw[i] == '\\' && i+1 < len(raw) && raw[i+1] == 'u':
			if i+6 <= len(raw) && strings.EqualFold(string(raw[i+2:i+6]), "fffd") {
				n++
			}
			i += 5
		case raw[i] == '\\':
			i++
		case bytes.HasPrefix(raw[i:], []byte("\uFFFD")):
			n++
			i += 2
		}
	}
	return strings.Count(decoded, "\uFFFD") > n
}

// pathRaw returns the raw JSON value at path in an object.
func pathRaw(in []byte, path []string) ([]byte, bool) {
	obj := json.RawMessage(in)
	for _, seg := range path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, false
		}
		v, ok := m[seg]
		if !ok {
			return nil, false
		}
		obj = v
	}
	return obj, true
}
