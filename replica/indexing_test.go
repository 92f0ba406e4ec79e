package replica_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
)

func TestContainer_NormalizeIndexingPolicy(t *testing.T) {
	many := make([]string, replica.MaxIndexedPaths+1)
	for i := range many {
		many[i] = fmt.Sprintf("/p%d", i)
	}
	for _, tc := range []struct {
		name  string
		paths []string
		err   string // "" valid
	}{
		{"paths", []string{"/price", "/owner/name", "/a~1b"}, ""},
		{"the limit", many[:replica.MaxIndexedPaths], ""},
		{"over the limit", many, "at most 16"},
		{"not a path", []string{"price"}, "must start with '/'"},
		{"empty segment", []string{"/owner//name"}, "empty segment"},
		{"twice", []string{"/price", "/price"}, "given twice"},
		{"system property", []string{"/_ts"}, "system properties"},
		{"quote", []string{`/a"b`}, "quote"},
	} {
		c := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: tc.paths}}
		got, err := c.Normalize()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && len(got.IndexingPolicy.Paths) != len(tc.paths):
			t.Errorf("%s: %v", tc.name, got.IndexingPolicy)
		case tc.err != "" && (!errors.Is(err, replica.ErrInvalid) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
	// No paths is no policy.
	got, err := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{}}.Normalize()
	if err != nil || got.IndexingPolicy != nil {
		t.Fatalf("empty policy: %+v, %v", got.IndexingPolicy, err)
	}
}
