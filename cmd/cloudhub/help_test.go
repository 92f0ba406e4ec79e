package main

import (
	"strings"
	"testing"
)

// TestRun_Help: -h lists the commands and the environment variable of
// every flag, and every way of asking for help exits 0.
func TestRun_Help(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // in stdout and stderr together
	}{
		{name: "help flag", args: []string{"--help"},
			want: []string{"commands:", "serve", "migrate --data DIR --postgres URL", "demo", "resolver", "bench", "--admin-token string  (CLOUDHUB_ADMIN_TOKEN)", "(CLOUDHUB_TLS_CERT)", "(CLOUDHUB_TLS_KEY)"}},
		{name: "help command", args: []string{"help"}, want: []string{"commands:", "resolver test --wasm FILE"}},
		{name: "serve -h", args: []string{"serve", "-h"}, want: []string{"usage: cloudhub serve [flags]", "(CLOUDHUB_LISTEN)", "(CLOUDHUB_PING_INTERVAL)"}},
		{name: "migrate -h", args: []string{"migrate", "-h"}, want: []string{"usage: cloudhub migrate [flags]", "(CLOUDHUB_DATA)", "(CLOUDHUB_POSTGRES)", "(CLOUDHUB_PROGRESS_INTERVAL)"}},
		{name: "demo -h", args: []string{"demo", "-h"}, want: []string{"usage: cloudhub demo [flags]", "(CLOUDHUB_DEMO_EDGES)"}},
		{name: "resolver --help", args: []string{"resolver", "--help"}, want: []string{"cloudhub resolver test --wasm FILE --input CASE.json"}},
		{name: "resolver test -h", args: []string{"resolver", "test", "-h"}, want: []string{"--wasm string  (CLOUDHUB_WASM)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(t.Context(), tt.args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != 0 {
				t.Errorf("run(%q) = %d, want 0\n%s", tt.args, code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("run(%q) printed no %q:\n%s", tt.args, w, out)
				}
			}
		})
	}
}
