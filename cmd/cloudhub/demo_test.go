package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/proctest"
)

// TestDemo_installsResolvers starts the demo in this process and checks that
// the hub runs the cart-merge and counter resolvers for carts and counters:
// the modules built into the binary, wherever it runs, or those of
// --resolvers.
func TestDemo_installsResolvers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and an edge")
	}
	fixtures, err := filepath.Abs(resolverFixtures)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		flags []string
	}{
		{name: "built in, outside the repository"},
		{name: "from --resolvers", flags: []string{"--resolvers", fixtures}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			testDemoResolvers(t, tt.flags)
		})
	}
}

func testDemoResolvers(t *testing.T, flags []string) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs proctest.Buffer
	done := make(chan int, 1)
	args := append([]string{"demo", "--listen", "127.0.0.1:0", "--edge-port", "0", "--edges", "1", "--dir", t.TempDir()}, flags...)
	go func() { done <- run(ctx, args, &out, &logs) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited %d\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("demo did not stop")
		}
	}()
	hubRE := regexp.MustCompile(`hub\s+(http://\S+)`)
	var hubURL string
	for start := time.Now(); hubURL == ""; time.Sleep(50 * time.Millisecond) {
		if m := hubRE.FindStringSubmatch(out.String()); m != nil {
			hubURL = m[1]
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no hub URL in the demo's output:\n%s\n%s", out.String(), logs.String())
		}
	}
	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hubURL+path, nil)
		req.Header.Set("Authorization", "Bearer demo")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, v) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	var list struct {
		Resolvers []struct{ Name string } `json:"resolvers"`
	}
	get("/api/v1/resolvers", &list)
	if len(list.Resolvers) != 2 || list.Resolvers[0].Name != "cart-merge" || list.Resolvers[1].Name != "counter" {
		t.Fatalf("resolvers %+v, want cart-merge and counter", list.Resolvers)
	}
	for c, want := range map[string]string{"carts": "cart-merge", "counters": "counter"} {
		var def struct {
			ConflictPolicy struct{ Mode, Resolver string } `json:"conflictPolicy"`
		}
		get("/api/v1/containers/"+c, &def)
		if def.ConflictPolicy.Mode != "custom" || def.ConflictPolicy.Resolver != want {
			t.Errorf("%s policy %+v, want custom %s", c, def.ConflictPolicy, want)
		}
	}
}

// TestDemo_JSONLogsHaveNoDuplicateKeys: every line the demo logs in JSON is
// an object whose keys are distinct, the lines of its edges and their
// sessions at the hub included.
func TestDemo_JSONLogsHaveNoDuplicateKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and two edges")
	}
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs proctest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--log-format", "json", "--listen", "127.0.0.1:0", "--edge-port", "0", "--edges", "2", "--dir", t.TempDir()}, &out, &logs)
	}()
	for start := time.Now(); strings.Count(logs.String(), `"msg":"edge connected"`) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the edges did not connect:\n%s", logs.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("demo exited %d\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not stop")
	}
	lines := 0
	for line := range strings.Lines(logs.String()) {
		lines++
		if dup := duplicateKey(t, line); dup != "" {
			t.Errorf("key %q twice in %s", dup, line)
		}
	}
	if lines < 10 {
		t.Errorf("%d log lines, want the demo's startup and shutdown", lines)
	}
}

// duplicateKey returns a key that occurs twice in the JSON object line,
// or "".
func duplicateKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("log line is not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
		key := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("log line %s: %v", line, err)
		}
	}
	return ""
}
