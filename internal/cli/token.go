package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SavedToken returns the token saved in dir/name, or generates one (prefix
// and 24 random bytes, URL-safe base64), saves it (mode 0600, written
// atomically) and reports it as new.
func SavedToken(dir, name, prefix string) (string, bool, error) {
	return savedSecret(dir, name, 24, func(b []byte) string {
		return prefix + base64.RawURLEncoding.EncodeToString(b)
	})
}

// SavedKey is SavedToken for a 64-byte key in standard base64, the form of
// an Azure Cosmos DB account key (the SDKs decode it so).
func SavedKey(dir, name string) (string, bool, error) {
	return savedSecret(dir, name, 64, base64.StdEncoding.EncodeToString)
}

// savedSecret returns the secret saved in dir/name, or generates one from n
// random bytes written out by encode, saves it with saveSecret and reports it
// as new.
func savedSecret(dir, name string, n int, encode func([]byte) string) (string, bool, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read %s: %w", name, err)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	return saveSecret(dir, name, encode(b))
}

// saveSecret writes token to dir/name (mode 0600, atomically) and reports
// it as new.
func saveSecret(dir, name, token string) (string, bool, error) {
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		if _, err = tmp.WriteString(token + "\n"); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", false, fmt.Errorf("save %s: %w", name, err)
	}
	return token, true, nil
}
