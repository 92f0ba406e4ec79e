package replica

import (
	"strconv"
	"testing"
)

// appendQuoted quotes as strconv.AppendQuote does, whatever the bytes.
func TestAppendQuoted(t *testing.T) {
	in := []string{``, `"v1"`, `"e5304fbc0b46b888f-12"`, `a"b\c`, "\"a\\b\u00e9\"", "tab\there", "\x7f", "\xff\xfe", "日本"}
	for c := range 256 {
		in = append(in, "x"+string(rune(c))+"y", "q"+string([]byte{byte(c)}))
	}
	for _, s := range in {
		if got, want := string(appendQuoted([]byte("["), s)), string(strconv.AppendQuote([]byte("["), s)); got != want {
			t.Errorf("appendQuoted(%q)=%s, want %s", s, got, want)
		}
	}
}
