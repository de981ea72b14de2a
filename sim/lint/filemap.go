package lint

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The file map is the table under "## File map" in DESIGN.md: each row
// names a path (a directory ending in "/", a file, or files side by side:
// "`sim/env.go`, `clock.go`") and says what it holds, often naming the
// files inside a directory. CheckFileMap keeps it true: every path and
// every Go file it names exists, and every package of the module is on it.

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	goFileName = regexp.MustCompile(`^[A-Za-z0-9_*]+\.go$`)
)

// fileMapRowsMax bounds the rows read, so a runaway document cannot make
// the check run without end.
const fileMapRowsMax = 1000

// mapRow is one row of the file map.
type mapRow struct {
	line  int
	paths []string // repository-relative: a directory ends in "/"
	named []string // Go files the description names (only for directories)
}

// CheckFileMap checks the file map in designFile against the tree at root.
func CheckFileMap(root, designFile string) ([]Violation, error) {
	rows, err := readFileMap(designFile)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no file map (a table under \"## File map\")", designFile)
	}
	rel := filepath.Base(designFile)
	var found []Violation
	covered := map[string]bool{}
	for _, r := range rows {
		for _, p := range r.paths {
			dir := strings.TrimSuffix(p, "/")
			if !strings.HasSuffix(p, "/") {
				dir = path.Dir(p)
			}
			covered[dir] = true
			if !exists(root, p) {
				found = append(found, Violation{File: rel, Line: r.line, What: fmt.Sprintf("names %s, which does not exist", p)})
			}
		}
		for _, name := range r.named {
			p := path.Join(strings.TrimSuffix(r.paths[0], "/"), name)
			if !exists(root, p) {
				found = append(found, Violation{File: rel, Line: r.line, What: fmt.Sprintf("names %s, which does not exist", p)})
			}
		}
	}
	packages, err := packageDirs(root)
	if err != nil {
		return nil, err
	}
	for _, dir := range packages {
		if !covered[dir] {
			found = append(found, Violation{File: rel, Line: 0, What: fmt.Sprintf("does not map package directory %s/", dir)})
		}
	}
	return found, nil
}

// readFileMap parses the rows of the file map.
func readFileMap(designFile string) ([]mapRow, error) {
	f, err := os.Open(designFile)
	if err != nil {
		return nil, fmt.Errorf("open file map: %w", err)
	}
	defer f.Close()
	var rows []mapRow
	inMap := false
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "## ") {
			inMap = text == "## File map"
			continue
		}
		if !inMap || !strings.HasPrefix(text, "| `") {
			continue
		}
		if len(rows) >= fileMapRowsMax {
			return nil, fmt.Errorf("%s:%d: more than %d file map rows", designFile, line, fileMapRowsMax)
		}
		rows = append(rows, parseRow(text, line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read file map: %w", err)
	}
	return rows, nil
}

// parseRow reads "| `a/b.go`, `c.go` | what ... `d.go` |": names after the
// first are relative to the first's directory.
func parseRow(text string, line int) mapRow {
	cells := strings.Split(strings.Trim(text, "|"), "|")
	r := mapRow{line: line}
	for i, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
		p := m[1]
		if i > 0 && !strings.Contains(p, "/") {
			p = path.Join(path.Dir(r.paths[0]), p)
		}
		r.paths = append(r.paths, p)
	}
	if len(cells) > 1 && len(r.paths) == 1 && strings.HasSuffix(r.paths[0], "/") {
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			if goFileName.MatchString(m[1]) {
				r.named = append(r.named, m[1])
			}
		}
	}
	return r
}

// exists reports whether p (a directory, a file, or a pattern with "*" or
// "NN" standing for digits) names something under root.
func exists(root, p string) bool {
	pattern := strings.ReplaceAll(strings.TrimSuffix(p, "/"), "NN", "[0-9][0-9]")
	matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
	return err == nil && len(matches) > 0
}

// packageDirs lists the module's directories holding non-test Go files,
// outside testdata and hidden directories, in order.
func packageDirs(root string) ([]string, error) {
	set := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			set[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	dirs := make([]string, 0, len(set))
	for d := range set {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs, nil
}
