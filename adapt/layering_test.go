package adapt

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/spladapt/spladapt/"

// deps returns the packages of this module that pkg (a path below the
// module, e.g. "splade") imports, directly or not, outside tests.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	var walk func(p string)
	walk = func(p string) {
		bp, err := build.ImportDir(filepath.Join("..", filepath.FromSlash(p)), 0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, imp := range bp.Imports {
			if q, ok := strings.CutPrefix(imp, module); ok && !seen[q] {
				seen[q] = true
				walk(q)
			}
		}
	}
	walk(pkg)
	return seen
}

// TestLayering keeps the rules of ARCHITECTURE.md: index knows nothing of
// models; splade emits sparse vectors and does not import index (adapt and
// the CLI join them); eval sees only qrels and runs; the library packages
// take option structs, not the application's config.
func TestLayering(t *testing.T) {
	if d := deps(t, "splade"); !d["nn"] || !d["sparse"] {
		t.Fatalf("splade's imports as found: %v; want nn and sparse among them", d)
	}
	for pkg, banned := range map[string][]string{
		"index":    {"nn", "splade", "pretrain", "tokenize", "config"},
		"splade":   {"index", "config", "adapt"},
		"pretrain": {"index", "config", "splade", "adapt"},
		"rerank":   {"index", "config", "adapt"},
		"eval":     {"nn", "splade", "index", "bm25", "config"},
		"sparse":   {"index", "splade", "nn"},
	} {
		d := deps(t, pkg)
		for _, b := range banned {
			if d[b] {
				t.Errorf("%s imports %s (directly or through another package)", pkg, b)
			}
		}
	}
}
