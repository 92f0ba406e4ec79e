package resolvertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Corpus is the malicious corpus of testdata/resolvers/malicious, as its
// expect.json lists it: the modules refused at upload, with a text the
// refusal must contain, and the modules whose every call fails, with the
// reason. The modules named in Generated are not files: Hostile builds
// them.
type Corpus struct {
	Refused   map[string]string
	Failing   map[string]string
	Generated []string
	dir       string
}

// LoadCorpus reads dir/expect.json and checks that it lists every .wasm
// file of dir, and that every generated name is one Hostile knows.
func LoadCorpus(tb testing.TB, dir string) Corpus {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		tb.Fatal(err)
	}
	c := Corpus{dir: dir}
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatalf("%s/expect.json: %v", dir, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if len(c.Refused) == 0 || len(c.Failing) == 0 || len(files)+len(c.Generated) != len(c.Refused)+len(c.Failing) {
		tb.Fatalf("expect.json lists %d refused and %d failing modules; the corpus has %d files and %d generated",
			len(c.Refused), len(c.Failing), len(files), len(c.Generated))
	}
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := c.Refused[name]; !ok && c.Failing[name] == "" {
			tb.Fatalf("%s is not in expect.json", f)
		}
	}
	for _, name := range c.Generated {
		_, refused := c.Refused[name]
		if !slices.Contains(HostileNames(), name) || !refused && c.Failing[name] == "" {
			tb.Fatalf("expect.json: generated module %q is not one resolvertest.Hostile builds, or is not listed", name)
		}
	}
	return c
}

// Module returns the bytes of the corpus module called name.
func (c Corpus) Module(tb testing.TB, name string) []byte {
	tb.Helper()
	if slices.Contains(c.Generated, name) {
		b, _ := Hostile(name)
		return b
	}
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		tb.Fatalf("%v (rebuild with resolvers/build.sh)", err)
	}
	return b
}
