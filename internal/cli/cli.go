// Package cli holds what the edgesync binaries share: flags that also read
// environment variables, the logger choice, the build version, and usage
// errors (exit code 2).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
)

// UsageError is a bad command line or environment: the binary exits 2.
type UsageError string

func (e UsageError) Error() string { return string(e) }

// ExitCode maps run's error to the process exit code, printing it.
func ExitCode(prog string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(UsageError)):
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
}

// ParseFlags parses args, then fills every flag not given on the command
// line from its environment variable prefix+NAME (dashes become
// underscores). --version is never read from the environment: a deployment's
// own VERSION variable must not turn a server into a version printer.
// -h lists every flag with the variable it reads.
func ParseFlags(fs *flag.FlagSet, args []string, prefix string) error {
	fs.Usage = func() { PrintFlags(fs, prefix) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return UsageError(err.Error())
	}
	if fs.NArg() > 0 {
		return UsageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || f.Name == "version" {
			return
		}
		env := envName(prefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = UsageError(fmt.Sprintf("%s=%q: %v", env, v, serr))
			}
		}
	})
	return err
}

// Version is the build's version: what -ldflags "-X ...=v" set, else the VCS
// revision, else "dev".
func Version(set string) string {
	if set != "" {
		return set
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// NewLogger returns the text or JSON logger --log-format asks for.
func NewLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, UsageError(fmt.Sprintf("--log-format %q: want text or json", format))
}

// envName is the environment variable a flag reads.
func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// PrintFlags writes fs's usage line and its flags, each with its default
// and the environment variable it also reads, to fs.Output().
func PrintFlags(fs *flag.FlagSet, prefix string) {
	w := fs.Output()
	fmt.Fprintf(w, "usage: %s [flags]\n\nflags (each also read from the environment variable shown; the command line wins):\n", fs.Name())
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		if f.Name != "version" {
			line += "  (" + envName(prefix, f.Name) + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch def := f.DefValue; {
		case def == "" || def == "false" || def == "0":
		case typ == "string":
			fmt.Fprintf(w, " (default %q)", def)
		default:
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}
