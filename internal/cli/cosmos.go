package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"

	"github.com/edgesync/edgesync/web"
	"github.com/edgesync/edgesync/web/cosmos"
)

// CosmosFlags are --cosmos-listen and --cosmos-key: serve the Azure Cosmos
// DB API (docs/cosmos.md) beside the node's own.
type CosmosFlags struct {
	Listen, Key string
}

// Register adds the flags to fs.
func (f *CosmosFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Listen, "cosmos-listen", "",
		"address of the Azure Cosmos DB API for the official SDKs (docs/cosmos.md), e.g. 127.0.0.1:8081; default: not served")
	fs.StringVar(&f.Key, "cosmos-key", "",
		"master key (base64) the Cosmos DB API's clients sign requests with; default: generated once and saved in the data dir as cosmos-key")
}

// Serve serves the Cosmos DB API (cfg, Key aside) when --cosmos-listen is set
// (nil, nil otherwise), keyed with --cosmos-key or the key saved in dir,
// generated and printed to stdout the first time. Over tlsConfig when it is
// not nil.
func (f *CosmosFlags) Serve(dir string, cfg cosmos.Config, tlsConfig *tls.Config, stdout io.Writer) (*Server, error) {
	if f.Listen == "" {
		return nil, nil
	}
	key, created := f.Key, false
	if key == "" {
		var err error
		if key, created, err = SavedKey(dir, "cosmos-key"); err != nil {
			return nil, err
		}
	}
	k, err := cosmos.ParseKey(key)
	if err != nil {
		return nil, UsageError("--cosmos-key: " + err.Error())
	}
	cfg.Key = k
	log := cfg.Logger
	srv, err := Listen(f.Listen, log)
	if err != nil {
		return nil, fmt.Errorf("cosmos api: %w", err)
	}
	srv.WrapListener(web.Listener)
	srv.UseTLS(tlsConfig)
	srv.Serve(cosmos.New(cfg))
	if created {
		fmt.Fprintf(stdout, "Cosmos DB API key (saved in %s, shown once): %s\n", filepath.Join(dir, "cosmos-key"), key)
	}
	if tlsConfig == nil && !loopbackAddr(f.Listen) {
		log.Warn("the Cosmos DB API is served over plain HTTP beyond loopback: its traffic can be read, and a captured request replayed within 15 minutes; use --tls-cert and --tls-key", "addr", srv.Addr())
	}
	log.Info("cosmos api listening", "addr", srv.Addr(), "tls", srv.TLS())
	return srv, nil
}

// ShutdownCosmos shuts down cs, the server Serve returned (nil: none), and
// joins a failure to *err; the commands defer it.
func ShutdownCosmos(cs *Server, err *error) {
	if cs == nil {
		return
	}
	if serr := cs.Shutdown(); serr != nil {
		*err = errors.Join(*err, fmt.Errorf("close cosmos api: %w", serr))
	}
}

// loopbackAddr reports whether addr (host:port) is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
