package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// Command is one subcommand of a binary.
type Command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Sub is a subcommand: its name, a one-line summary for help, and its code.
type Sub struct {
	Name, Summary string
	Run           Command
}

// Dispatch runs the subcommand args[0] names (def when args start with a
// flag or are empty) and returns the process exit code. "help", and -h
// before any command, list the commands; -h then shows def's flags.
func Dispatch(ctx context.Context, prog, def string, subs []Sub, args []string, stdout, stderr io.Writer) int {
	name := def
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	names := make([]string, 0, len(subs))
	for _, s := range subs {
		names = append(names, s.Name)
	}
	if name == "help" {
		printCommands(stdout, prog, def, subs)
		return 0
	}
	var run Command
	for _, s := range subs {
		if s.Name == name {
			run = s.Run
		}
	}
	if run == nil {
		return ExitCode(prog, UsageError(fmt.Sprintf("unknown command %q: want %s", name, strings.Join(names, ", "))), stderr)
	}
	if name == def && len(args) > 0 && IsHelp(args[0]) {
		printCommands(stderr, prog, def, subs)
		fmt.Fprintln(stderr)
	}
	return ExitCode(prog, run(ctx, args, stdout, stderr), stderr)
}

// IsHelp reports whether arg asks for help: -h, -help, --h or --help.
func IsHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

func printCommands(w io.Writer, prog, def string, subs []Sub) {
	fmt.Fprintf(w, "usage: %s [command] [flags]\n\ncommands:\n", prog)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, s := range subs {
		summary := s.Summary
		if s.Name == def {
			summary += " (the default)"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s <command> -h lists a command's flags and the environment variables they read.\n", prog)
}

// Server is an HTTP server on a listener of its own. Its Base context ends
// before Shutdown, so that hijacked (WebSocket) and streaming (SSE)
// connections, which Shutdown does not wait for, end too.
type Server struct {
	Base   context.Context
	cancel context.CancelFunc
	ln     net.Listener
	srv    *http.Server
	tls    bool
	errc   chan error
}

// Listen opens the listener.
func Listen(addr string, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{Base: base, cancel: cancel, ln: ln, errc: make(chan error, 1)}
	s.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// WrapListener wraps the listener before Serve (web.Listener: JSON bodies
// for the errors net/http answers itself).
func (s *Server) WrapListener(wrap func(net.Listener) net.Listener) { s.ln = wrap(s.ln) }

// UseTLS makes Serve speak HTTPS with cfg (nil: plain HTTP). Over TLS a
// WrapListener wrapper sees encrypted records, not requests: net/http's own
// early error responses (malformed request lines) stay plain text.
func (s *Server) UseTLS(cfg *tls.Config) {
	s.srv.TLSConfig, s.tls = cfg, cfg != nil
}

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls }

// Serve starts serving h.
func (s *Server) Serve(h http.Handler) {
	s.srv.Handler = h
	if s.tls {
		go func() { s.errc <- s.srv.ServeTLS(s.ln, "", "") }()
		return
	}
	go func() { s.errc <- s.srv.Serve(s.ln) }()
}

// Run waits until ctx ends (a signal) or serving fails, then shuts down:
// base context first, then open requests get up to 10 s.
func (s *Server) Run(ctx context.Context, log *slog.Logger) error {
	select {
	case err := <-s.errc:
		s.cancel()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	return s.Shutdown()
}

// Abandon closes the listener of a server that was never served.
func (s *Server) Abandon() { s.cancel(); _ = s.ln.Close() }

// Shutdown stops the server.
func (s *Server) Shutdown() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
