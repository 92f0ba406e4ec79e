package cli

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
)

// TLSFlags are --tls-cert and --tls-key: serve HTTPS (and WSS) with a
// certificate and its private key, both PEM files.
type TLSFlags struct {
	Cert, Key string
}

// Register adds the flags to fs.
func (f *TLSFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Cert, "tls-cert", "", "serve HTTPS with this certificate (PEM; chain after the leaf); needs --tls-key")
	fs.StringVar(&f.Key, "tls-key", "", "private key of --tls-cert (PEM)")
}

// Config returns the server's TLS configuration, or nil when neither flag
// is set. The two flags go together; the certificate is read once, at start.
func (f *TLSFlags) Config() (*tls.Config, error) {
	switch {
	case f.Cert == "" && f.Key == "":
		return nil, nil
	case f.Cert == "" || f.Key == "":
		return nil, UsageError(fmt.Sprintf("--tls-cert %q and --tls-key %q: give both or neither", f.Cert, f.Key))
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, UsageError(fmt.Sprintf("--tls-cert %q, --tls-key %q: %v", f.Cert, f.Key, err))
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// maxCABytes bounds a --hub-ca file.
const maxCABytes = 1 << 20

// CertPool reads a PEM bundle of CA certificates (flag names the option in
// errors).
func CertPool(flag, file string) (*x509.CertPool, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, UsageError(fmt.Sprintf("%s %q: %v", flag, file, err))
	}
	if fi.Size() > maxCABytes {
		return nil, UsageError(fmt.Sprintf("%s %q: %d bytes, limit %d", flag, file, fi.Size(), maxCABytes))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, UsageError(fmt.Sprintf("%s %q: %v", flag, file, err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, UsageError(fmt.Sprintf("%s %q: no PEM certificate in it", flag, file))
	}
	return pool, nil
}
