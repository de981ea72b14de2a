package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryKeepsTheSeamRule fails the build when core code touches the
// world directly.
func TestRepositoryKeepsTheSeamRule(t *testing.T) {
	root := repoRoot(t)
	found, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range found {
		t.Errorf("%s", v)
	}
}

// TestPlantedViolationsAreCaught proves the rule can fail: a tree with one
// of each violation must report each, and must not report the exempt tree.
func TestPlantedViolationsAreCaught(t *testing.T) {
	found, err := Check(filepath.Join("testdata", "planted"))
	if err != nil {
		t.Fatal(err)
	}
	expectViolations(t, found, []string{
		`broker/bad.go:5: imports "math/rand" (the global random stream: use env.Rand)`,
		`broker/bad.go:6: imports "os" (files and processes: use sim.FS)`,
		`broker/bad.go:12: uses time.Now (the real clock: use env.Clock)`,
		`broker/bad.go:13: uses time.Sleep (the real clock: use env.Clock)`,
		`broker/bad.go:14: starts a goroutine (actors run on their node's loop)`,
		`broker/bad.go:14: uses sync.Mutex (actors run one callback at a time on their loop: no locks; only sync.Pool, a cache of objects reset before use, may be shared)`,
		`broker/bad.go:15: uses select (its choice is random: actors take events from their loop)`,
		`checkers/aliased.go:4: imports "net" (sockets: use sim.Network)`,
		`checkers/aliased.go:10: uses time.Since (the real clock: use env.Clock)`,
	})
}

// expectViolations fails t unless found is exactly want, in order.
func expectViolations(t *testing.T, found []Violation, want []string) {
	t.Helper()
	var got []string
	for _, v := range found {
		got = append(got, v.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n got:\n%s\n want:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestDesignFileMapIsTrue keeps DESIGN.md's file map in step with the
// tree: every path and Go file it names exists, every package is on it.
func TestDesignFileMapIsTrue(t *testing.T) {
	root := repoRoot(t)
	found, err := CheckFileMap(root, filepath.Join(root, "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range found {
		t.Errorf("%s", v)
	}
}

// TestStaleFileMapIsCaught proves the file map check can fail: the planted
// map names a missing file and a missing directory's file, and leaves a
// package out.
func TestStaleFileMapIsCaught(t *testing.T) {
	dir := filepath.Join("testdata", "filemap")
	found, err := CheckFileMap(dir, filepath.Join(dir, "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	expectViolations(t, found, []string{
		"DESIGN.md:7: names core/gone.go, which does not exist",
		"DESIGN.md:8: names store/missing.go, which does not exist",
		"DESIGN.md:0: does not map package directory unmapped/",
	})
}
