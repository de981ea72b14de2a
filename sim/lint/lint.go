// Package lint enforces the project's one architectural rule: core code
// reaches time, randomness, disk and network only through the seams in
// package sim. The rule is checked by an ordinary test (lint_test.go) over
// the whole repository, so breaking it fails the build. The same package
// keeps DESIGN.md's file map true (filemap.go).
package lint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Violation is one place that breaks the rule.
type Violation struct {
	File string // slash-separated, relative to the root
	Line int
	What string
}

func (v Violation) String() string { return fmt.Sprintf("%s:%d: %s", v.File, v.Line, v.What) }

// bannedImports are packages that touch the world directly. Subpackages of
// os and of net (but for the pure ones) are banned with them.
var bannedImports = map[string]string{
	"os":          "files and processes: use sim.FS",
	"net":         "sockets: use sim.Network",
	"net/http":    "sockets: use sim.Network",
	"syscall":     "the kernel: use the seams",
	"math/rand":   "the global random stream: use env.Rand",
	"crypto/rand": "the operating system's entropy: use env.Rand",
	"log":         "standard error with wall-clock stamps: use env.Log",
}

var bannedPrefixes = []string{"os/", "net/http/", "net/rpc", "net/smtp"}

// bannedTimeCalls read the real clock or wait on it.
var bannedTimeCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}

// actorTrees hold actors, whose callbacks must run one at a time on their
// node's loop: no goroutines, no select, no locks.
var actorTrees = []string{"broker", "collector", "workloads", "faults"}

// exemptTrees may touch the world: the seams' implementations and the
// command.
var exemptTrees = []string{"sim", "cmd"}

// Check lints every non-test Go file under root.
func Check(root string) ([]Violation, error) {
	var found []Violation
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		top, _, _ := strings.Cut(rel, "/")
		if slices.Contains(exemptTrees, top) || !strings.Contains(rel, "/") {
			return nil
		}
		vs, err := checkFile(path, rel, slices.Contains(actorTrees, top))
		found = append(found, vs...)
		return err
	})
	sort.Slice(found, func(i, j int) bool {
		if found[i].File != found[j].File {
			return found[i].File < found[j].File
		}
		if found[i].Line != found[j].Line {
			return found[i].Line < found[j].Line
		}
		return found[i].What < found[j].What
	})
	return found, err
}

func checkFile(path, rel string, actor bool) ([]Violation, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("lint %s: %w", rel, err)
	}
	var found []Violation
	add := func(pos token.Pos, format string, args ...any) {
		found = append(found, Violation{File: rel, Line: fset.Position(pos).Line, What: fmt.Sprintf(format, args...)})
	}
	timeNames := map[string]bool{}
	syncNames := map[string]bool{}
	for _, imp := range file.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if why := bannedImport(p); why != "" {
			add(imp.Pos(), "imports %q (%s)", p, why)
		}
		if actor && p == "sync/atomic" {
			add(imp.Pos(), "imports %q (actors run one callback at a time on their loop: no locks)", p)
		}
		if actor && p == "sync" {
			syncNames[importName(imp, "sync")] = true
		}
		if p == "time" {
			timeNames[importName(imp, "time")] = true
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && syncNames[x.Name] && sel.Sel.Name != "Pool" {
				add(sel.Pos(), "uses sync.%s (actors run one callback at a time on their loop: no locks; only sync.Pool, a cache of objects reset before use, may be shared)", sel.Sel.Name)
			}
		}
		return true
	})
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && timeNames[x.Name] && slices.Contains(bannedTimeCalls, n.Sel.Name) {
				add(n.Pos(), "uses time.%s (the real clock: use env.Clock)", n.Sel.Name)
			}
		case *ast.GoStmt:
			if actor {
				add(n.Pos(), "starts a goroutine (actors run on their node's loop)")
			}
		case *ast.SelectStmt:
			if actor {
				add(n.Pos(), "uses select (its choice is random: actors take events from their loop)")
			}
		}
		return true
	})
	return found, nil
}

// importName is the name a file uses for an import of the package whose
// own name is name.
func importName(imp *ast.ImportSpec, name string) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	return name
}

func bannedImport(p string) string {
	if why, ok := bannedImports[p]; ok {
		return why
	}
	for _, prefix := range bannedPrefixes {
		if strings.HasPrefix(p, prefix) {
			return "touches the world: use the seams"
		}
	}
	return ""
}
