package replica

import (
	"slices"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		want    []string
		wantErr bool
	}{
		{name: "one segment", path: "/pk", want: []string{"pk"}},
		{name: "two segments", path: "/a/b", want: []string{"a", "b"}},
		{name: "eight segments", path: "/1/2/3/4/5/6/7/8", want: []string{"1", "2", "3", "4", "5", "6", "7", "8"}},
		{name: "escaped slash", path: "/a~1b", want: []string{"a/b"}},
		{name: "escaped tilde", path: "/a~0b", want: []string{"a~b"}},
		{name: "escape order ~01", path: "/~01", want: []string{"~1"}},
		{name: "escape order ~10", path: "/~10", want: []string{"/0"}},
		{name: "system property name", path: "/_ts", want: []string{"_ts"}},
		{name: "empty", path: "", wantErr: true},
		{name: "root only", path: "/", wantErr: true},
		{name: "no leading slash", path: "pk", wantErr: true},
		{name: "empty segment", path: "//", wantErr: true},
		{name: "trailing slash", path: "/a/", wantErr: true},
		{name: "empty middle segment", path: "/a//b", wantErr: true},
		{name: "nine segments", path: "/1/2/3/4/5/6/7/8/9", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePath(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePath(%q) err=%v, want error %v", tt.path, err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(got, tt.want) {
				t.Fatalf("parsePath(%q)=%q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
