package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/wasmhost"
)

// resolverFlags are the resolver limits, shared by serve, demo and
// "resolver test" so that a test runs with the limits of the hub.
type resolverFlags struct {
	fuel, initFuel              int64
	memoryMB                    int
	moduleMB, inputMB, outputMB int
	timeout, compileTimeout     time.Duration
}

func (f *resolverFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&f.fuel, "resolver-fuel", wasmhost.DefaultFuel, "fuel of one resolver call (function entries and loop iterations, weighted by size)")
	fs.Int64Var(&f.initFuel, "resolver-init-fuel", wasmhost.DefaultInitFuel, "fuel of a resolver instance's _initialize")
	fs.IntVar(&f.memoryMB, "resolver-memory-mb", wasmhost.DefaultMemoryPages/16, "memory limit of a resolver instance, MiB")
	fs.IntVar(&f.moduleMB, "resolver-module-mb", wasmhost.DefaultModuleBytes>>20, "largest resolver module an upload may carry, MiB")
	fs.IntVar(&f.inputMB, "resolver-input-mb", wasmhost.DefaultInputBytes>>20, "largest input of one resolver call, MiB (the conflicting versions are trimmed first)")
	fs.IntVar(&f.outputMB, "resolver-output-mb", wasmhost.DefaultOutputBytes>>20, "largest output of one resolver call, MiB")
	fs.DurationVar(&f.timeout, "resolver-timeout", wasmhost.DefaultTimeout, "wall-clock bound of one resolver call or _initialize, behind the fuel (keep it well above what the fuel takes)")
	fs.DurationVar(&f.compileTimeout, "resolver-compile-timeout", wasmhost.DefaultCompileTimeout, "wall-clock bound of compiling an uploaded resolver")
}

func (f *resolverFlags) limits() (wasmhost.Limits, error) {
	if f.fuel <= 0 {
		return wasmhost.Limits{}, cli.UsageError(fmt.Sprintf("--resolver-fuel %d: want a positive number", f.fuel))
	}
	if f.initFuel <= 0 {
		return wasmhost.Limits{}, cli.UsageError(fmt.Sprintf("--resolver-init-fuel %d: want a positive number", f.initFuel))
	}
	if f.memoryMB < 1 || f.memoryMB > 4095 {
		return wasmhost.Limits{}, cli.UsageError(fmt.Sprintf("--resolver-memory-mb %d: want 1..4095", f.memoryMB))
	}
	for _, l := range []struct {
		name string
		mb   int
	}{{"module", f.moduleMB}, {"input", f.inputMB}, {"output", f.outputMB}} {
		if l.mb < 1 || l.mb > 1024 {
			return wasmhost.Limits{}, cli.UsageError(fmt.Sprintf("--resolver-%s-mb %d: want 1..1024", l.name, l.mb))
		}
	}
	for _, l := range []struct {
		name string
		d    time.Duration
	}{{"timeout", f.timeout}, {"compile-timeout", f.compileTimeout}} {
		if l.d < time.Millisecond || l.d > time.Hour {
			return wasmhost.Limits{}, cli.UsageError(fmt.Sprintf("--resolver-%s %v: want 1ms..1h", l.name, l.d))
		}
	}
	return wasmhost.Limits{Fuel: f.fuel, InitFuel: f.initFuel, MemoryPages: uint32(f.memoryMB * 16),
		ModuleBytes: f.moduleMB << 20, InputBytes: f.inputMB << 20, OutputBytes: f.outputMB << 20,
		Timeout: f.timeout, CompileTimeout: f.compileTimeout}, nil
}

// resolverCmd dispatches "cloudhub resolver <sub>".
func resolverCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: cloudhub resolver test --wasm FILE --input CASE.json [flags]; cloudhub resolver test -h for the flags"
	if len(args) > 0 && cli.IsHelp(args[0]) {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "test" {
		return cli.UsageError(usage)
	}
	return resolverTest(ctx, args[1:], stdout, stderr)
}

// testReport is what "cloudhub resolver test" prints.
type testReport struct {
	Output     json.RawMessage `json:"output,omitempty"`
	Decision   any             `json:"decision,omitempty"`
	Error      *testError      `json:"error,omitempty"`
	TimeMicros float64         `json:"timeMicros"`
	FuelUsed   int64           `json:"fuelUsed"`
	Memory     uint32          `json:"memoryBytes"`
	CompileMs  float64         `json:"compileMillis"`
	Log        string          `json:"log,omitempty"`
}

type testError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// resolverTest runs a resolver on one input with the hub's host code and
// limits and prints the output and what the call measured as JSON (the fuel
// used is the whole --resolver-fuel when the call ran out). The exit code is
// 0 when the resolver returned a valid decision, 1 otherwise. When ctx ends
// (SIGINT, SIGTERM), a running call stops at once with reason canceled.
func resolverTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var wasmPath, inputPath string
	var rf resolverFlags
	fs := flag.NewFlagSet("cloudhub resolver test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&wasmPath, "wasm", "", "the resolver module (.wasm)")
	fs.StringVar(&inputPath, "input", "", "the input: a JSON file as resolvers/ABI.md describes, - for stdin")
	rf.register(fs)
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_"); err != nil {
		return err
	}
	if wasmPath == "" || inputPath == "" {
		return cli.UsageError("--wasm and --input are required")
	}
	limits, err := rf.limits()
	if err != nil {
		return err
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return err
	}
	var input []byte
	if inputPath == "-" {
		input, err = io.ReadAll(io.LimitReader(os.Stdin, int64(limits.InputBytes)+1))
	} else {
		input, err = os.ReadFile(inputPath)
	}
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(input, &probe); err != nil {
		return fmt.Errorf("--input %s: not a JSON object: %w", inputPath, err)
	}
	h, err := wasmhost.New(ctx, wasmhost.Config{Limits: limits, Instances: 1})
	if err != nil {
		return err
	}
	defer h.Close(context.WithoutCancel(ctx))
	var rep testReport
	m, compile, err := wasmhost.CompileTimed(ctx, h, wasm)
	rep.CompileMs = float64(compile.Microseconds()) / 1e3
	if err != nil {
		return fmt.Errorf("%s: %w", wasmPath, err)
	}
	res, err := m.Call(ctx, input)
	rep.TimeMicros = float64(res.Duration.Nanoseconds()) / 1e3
	rep.FuelUsed, rep.Memory, rep.Log = res.FuelUsed, res.Memory, res.Log
	if err == nil {
		rep.Output = res.Output
		var out any
		if out, err = wasmhost.ParseOutput(res.Output); err == nil {
			rep.Decision = out
		}
	}
	var ce *wasmhost.CallError
	if errors.As(err, &ce) {
		rep.Error = &testError{Reason: ce.Reason, Message: ce.Err.Error()}
	} else if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if rep.Error != nil {
		return fmt.Errorf("resolver failed: %s", rep.Error.Reason)
	}
	return nil
}
