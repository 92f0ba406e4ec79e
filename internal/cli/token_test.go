package cli

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSavedToken_GeneratesOnceAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	tok, isNew, err := SavedToken(dir, "token", "es_")
	if err != nil || !isNew {
		t.Fatalf("first SavedToken = %q, %v, %v; want a new token", tok, isNew, err)
	}
	raw, ok := strings.CutPrefix(tok, "es_")
	if !ok {
		t.Fatalf("token %q lacks its prefix", tok)
	}
	if b, err := base64.RawURLEncoding.DecodeString(raw); err != nil || len(b) != 24 {
		t.Fatalf("token body %q: %d bytes, %v; want 24 bytes of URL-safe base64", raw, len(b), err)
	}
	fi, err := os.Stat(filepath.Join(dir, "token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved token file: %v, %v; want mode 0600", fi, err)
	}
	again, isNew, err := SavedToken(dir, "token", "es_")
	if err != nil || isNew || again != tok {
		t.Fatalf("second SavedToken = %q, %v, %v; want the saved %q", again, isNew, err, tok)
	}
}

func TestSavedKey_A64ByteStandardBase64Key(t *testing.T) {
	dir := t.TempDir()
	key, isNew, err := SavedKey(dir, "key")
	if err != nil || !isNew {
		t.Fatalf("first SavedKey = %q, %v, %v; want a new key", key, isNew, err)
	}
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 64 {
		t.Fatalf("key %q: %d bytes, %v; want 64 bytes of standard base64", key, len(b), err)
	}
	other, _, err := SavedKey(t.TempDir(), "key")
	if err != nil || other == key {
		t.Fatalf("a second directory's key = %q, %v; want another random key", other, err)
	}
	again, isNew, err := SavedKey(dir, "key")
	if err != nil || isNew || again != key {
		t.Fatalf("second SavedKey = %q, %v, %v; want the saved %q", again, isNew, err, key)
	}
}
