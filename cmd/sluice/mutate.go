package main

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/reports"
	"github.com/sluice-sim/sluice/workloads/scenario"
)

// A mutation campaign measures the checkers and workloads, not the code:
// it plants small mistakes of the kinds that cause data loss (a flipped
// comparison, an off-by-one, a skipped error check, a skipped call such as
// a sync), builds sluice with each one through `go build -overlay` (the
// tree is never edited), runs a bounded swarm against it, and reports the
// share of mutants some seed catches and the mutants that survive, so that
// gaps in what the scenarios reach show up as a number and a list.

// mutantKind names a kind of mutation.
type mutantKind string

const (
	mutFlipComparison mutantKind = "flip-comparison"
	mutOffByOne       mutantKind = "off-by-one"
	mutSkipCheck      mutantKind = "skip-error-check"
	mutDropCall       mutantKind = "drop-call"
)

// mutant is one planted mistake: a byte range of a file and its
// replacement.
type mutant struct {
	ID       int        `json:"id"`
	File     string     `json:"file"`
	Line     int        `json:"line"`
	Column   int        `json:"column"`
	Kind     mutantKind `json:"kind"`
	Original string     `json:"original"`
	Mutated  string     `json:"mutated"`
	// Func, Context and Occurrence name the site so that edits elsewhere
	// leave the name alone: the function it is in, the text of the
	// expression or statement mutated (spaces collapsed), and which of
	// that function's sites of the same kind and text it is, from 1.
	Func       string `json:"func"`
	Context    string `json:"context"`
	Occurrence int    `json:"occurrence"`
	start, end int
}

// key names a mutant within its campaign, as its site does: a resumed
// campaign finds the outcomes of mutants still in the code however the
// lines around them moved.
func (m mutant) key() string { return m.site() }

func (m mutant) String() string {
	return fmt.Sprintf("%s:%d %s: %s -> %s", m.File, m.Line, m.Kind, m.Original, m.Mutated)
}

// flips are the comparison operators a mutant swaps.
var flips = map[token.Token]string{
	token.LSS: "<=", token.LEQ: "<", token.GTR: ">=", token.GEQ: ">", token.EQL: "!=", token.NEQ: "==",
}

// droppedCalls are the methods whose call statements a mutant removes:
// the durability and cleanup steps whose absence loses data.
var droppedCalls = []string{"Sync", "SyncDir", "Truncate", "Flush", "Remove", "Rename"}

// findMutants lists every mutation site of the Go files (tests excluded)
// in dir, in file and offset order.
func findMutants(dir string) ([]mutant, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var all []mutant
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		all = append(all, mutantsOf(fset, file, name, src)...)
	}
	return all, nil
}

func mutantsOf(fset *token.FileSet, file *ast.File, name string, src []byte) []mutant {
	var out []mutant
	for _, decl := range file.Decls {
		out = append(out, mutantsOfDecl(fset, decl, name, src)...)
	}
	return out
}

// mutantsOfDecl lists the mutation sites of one top-level declaration,
// named by its function and numbered within it.
func mutantsOfDecl(fset *token.FileSet, decl ast.Decl, name string, src []byte) []mutant {
	var out []mutant
	funcName := declName(decl)
	seen := map[string]int{} // kind and context: sites so far
	text := func(from, to token.Pos) string {
		return string(src[fset.Position(from).Offset:fset.Position(to).Offset])
	}
	add := func(kind mutantKind, context ast.Node, from, to token.Pos, replacement string) {
		start, end := fset.Position(from).Offset, fset.Position(to).Offset
		m := mutant{File: name, Line: fset.Position(from).Line, Column: fset.Position(from).Column, Kind: kind,
			Original: string(src[start:end]), Mutated: replacement, start: start, end: end,
			Func: funcName, Context: strings.Join(strings.Fields(text(context.Pos(), context.End())), " ")}
		seen[string(kind)+" "+m.Context]++
		m.Occurrence = seen[string(kind)+" "+m.Context]
		out = append(out, m)
	}
	ast.Inspect(decl, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if flip, ok := flips[n.Op]; ok {
				add(mutFlipComparison, n, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), flip)
			}
			if lit, ok := n.Y.(*ast.BasicLit); ok && lit.Kind == token.INT && lit.Value == "1" &&
				(n.Op == token.ADD || n.Op == token.SUB) {
				other := map[token.Token]string{token.ADD: "-", token.SUB: "+"}[n.Op]
				add(mutOffByOne, n, n.OpPos, n.OpPos+1, other)
			}
		case *ast.IfStmt:
			if isErrCheck(n.Cond) {
				add(mutSkipCheck, n.Cond, n.Cond.Pos(), n.Cond.End(), "("+text(n.Cond.Pos(), n.Cond.End())+") && false")
			}
		case *ast.ExprStmt:
			if call, ok := n.X.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && slices.Contains(droppedCalls, sel.Sel.Name) {
					add(mutDropCall, n, n.Pos(), n.End(), "{}")
				}
			}
		}
		return true
	})
	return out
}

// declName names a top-level declaration as a site names its function:
// f, T.m or (*T).m; "-" for anything not a function (a package-level
// variable's initialiser).
func declName(decl ast.Decl) string {
	fn, ok := decl.(*ast.FuncDecl)
	if !ok {
		return "-"
	}
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv, star := fn.Recv.List[0].Type, ""
	if s, ok := recv.(*ast.StarExpr); ok {
		recv, star = s.X, "*"
	}
	switch r := recv.(type) { // a generic receiver: T[K] or T[K, V]
	case *ast.IndexExpr:
		recv = r.X
	case *ast.IndexListExpr:
		recv = r.X
	}
	typeName := fmt.Sprint(recv)
	if id, ok := recv.(*ast.Ident); ok {
		typeName = id.Name
	}
	if star != "" {
		return "(*" + typeName + ")." + fn.Name.Name
	}
	return typeName + "." + fn.Name.Name
}

// isErrCheck reports whether cond is "err != nil" for some variable.
func isErrCheck(cond ast.Expr) bool {
	b, ok := cond.(*ast.BinaryExpr)
	if !ok || b.Op != token.NEQ {
		return false
	}
	id, ok := b.Y.(*ast.Ident)
	if !ok || id.Name != "nil" {
		return false
	}
	x, ok := b.X.(*ast.Ident)
	return ok && strings.Contains(strings.ToLower(x.Name), "err")
}

// pickMutants draws n of the sites, repeatably for a seed, and numbers
// them. The draw goes round the files, taking one site of each in turn,
// so that a file with many comparisons does not crowd out the others.
// Files and each file's sites are ranked by a hash of the seed and their
// names, not shuffled by position in a list, so a site added or removed
// elsewhere leaves the rest of a draw as it was.
func pickMutants(all []mutant, n int, seed uint64) []mutant {
	byFile := map[string][]mutant{}
	var files []string
	for _, m := range all {
		if byFile[m.File] == nil {
			files = append(files, m.File)
		}
		byFile[m.File] = append(byFile[m.File], m)
	}
	byRank := func(a, b string) int {
		if c := cmp.Compare(drawRank(seed, a), drawRank(seed, b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}
	slices.SortFunc(files, byRank)
	for _, name := range files {
		slices.SortFunc(byFile[name], func(a, b mutant) int { return byRank(a.site(), b.site()) })
	}
	var picked []mutant
	for round := 0; len(picked) < min(n, len(all)); round++ {
		for _, name := range files {
			if sites := byFile[name]; round < len(sites) && len(picked) < n {
				picked = append(picked, sites[round])
			}
		}
	}
	slices.SortFunc(picked, func(a, b mutant) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.start - b.start
	})
	for i := range picked {
		picked[i].ID = i + 1
	}
	return picked
}

// drawRank places a name in a draw: FNV-1a of the seed and the name.
func drawRank(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(seed, 10) + " " + name)) // a hash's Write never fails
	return h.Sum64()
}

// Outcomes of a mutant. Only caught and survived count towards the
// score: a stillborn mutant does not build, and an equivalent one builds
// to the very program the unmutated tree builds to (the compiler saw
// through it), so no seed could ever tell them apart.
const (
	mutCaught     = "caught"
	mutSurvived   = "survived"
	mutStillborn  = "stillborn"
	mutEquivalent = "equivalent"
)

// mutantOutcome is what a mutant's swarm found.
type mutantOutcome struct {
	mutant
	// Result is caught, survived, stillborn or equivalent.
	Result string `json:"result"`
	// Detail names the seed and checks that caught it, or the build error.
	Detail string `json:"detail,omitempty"`
	// Seeds counts the seeds run; a caught mutant stops at its first
	// failing seed.
	Seeds   int     `json:"seeds"`
	Seconds float64 `json:"seconds"`
	// Tests is what the mutated package's own tests made of a survivor,
	// with --tests: "failed: " and the first failing test, or "passed".
	Tests string `json:"tests,omitempty"`
}

// testsFailedPrefix starts Tests when the package's tests caught the mutant.
const testsFailedPrefix = "failed: "

// caughtByTests says whether the package's tests caught a swarm's survivor.
func (o mutantOutcome) caughtByTests() bool { return strings.HasPrefix(o.Tests, testsFailedPrefix) }

type mutateFlags struct {
	packages    []string
	mutants     int
	seed        uint64
	seeds       int
	firstSeed   uint64
	scenarios   string
	parallel    int
	run, drain  time.Duration
	seedTimeout time.Duration
	only        []int
	sites       []string
	out         string
	equivalent  string
	list        bool
	jsonOut     bool
	tests       bool
	testTimeout time.Duration
	// noSwarm skips the swarms: with tests, the packages' tests alone
	// judge the mutants.
	noSwarm bool
}

func newSimMutateCommand() *cobra.Command {
	var f mutateFlags
	cmd := &cobra.Command{
		Use:   "mutate",
		Short: "Plant mutations in the source, run a bounded swarm against each, and report the share caught",
		Long: `Run a mutation campaign from a checkout of sluice: find the mutation sites
of the given packages (flipped comparisons, off-by-ones, skipped error
checks, dropped Sync/Truncate/Flush/Remove/Rename calls), draw --mutants of
them with --seed (going round the files, so that every file gets its
share), build sluice with each mutant through 'go build -overlay' (the tree
is not edited; Go's build cache rebuilds only the mutated package and
links), and run a swarm of --seeds seeds against it: the seeds go round
the scenarios of --scenario, each drawing its own fault mix and workload,
and the swarm stops at the first failing seed.

A mutant is caught when some seed fails and survives when none does. Two
outcomes do not count towards the score: stillborn (it does not build) and
equivalent (it builds to the same program as the unmutated tree, byte for
byte, so no seed could catch it; or --equivalent lists it with the reason
no run could tell it apart, such as a flipped comparison whose equal case
stores the value already there). An argued mutant is not run, and one
that was caught all the same (a campaign resumed from --out) stays caught
and is named: the argument was wrong. The report gives the share caught and
lists the survivors: each is a mistake the scenarios cannot see.

--tests also runs the mutated package's own tests ('go test -overlay')
against each survivor, and the report adds the share caught by the swarm
or the tests: a survivor the tests catch is a mistake only a test written
for that code sees, one that survives both is seen by nothing. The score
stays the swarm's. A resumed campaign runs the tests of the survivors it
read from --out that have not had them.

It needs the Go toolchain and the source tree (run it from the module).`,
		Example: `  sluice sim mutate --packages ./broker/storage,./workloads/kafka --mutants 50 --seeds 200 \
      --scenario single-broker,leader-crash --out campaign.jsonl
  sluice sim mutate --packages ./broker/storage --list
  sluice sim mutate --mutants 50 --only 3,17 --seeds 200   # rerun two mutants of the same draw
  sluice sim mutate --site broker/storage/epochs.go:154:'<' --site workloads/kafka/conn.go:171:skip-error-check
  sluice sim mutate --seed 7 --equivalent cmd/sluice/mutate_equivalent.txt --out campaign.jsonl
  sluice sim mutate --seed 7 --only 1,5 --seeds 100 --first-seed 51 --out more.jsonl   # seeds 51-100 of each of two scenarios
  sluice sim mutate --seed 1 --mutants 60 --tests --out campaign.jsonl   # the survivors' package tests too
  sluice sim mutate --seed 1 --mutants 60 --only 4,9 --tests --no-swarm   # the package tests alone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMutate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.packages, "packages", []string{"./broker/storage", "./workloads/kafka"}, "package directories to mutate")
	fl.IntVar(&f.mutants, "mutants", 50, "how many mutants to draw")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the draw")
	fl.IntVar(&f.seeds, "seeds", 200, "seeds per mutant, going round the scenarios")
	fl.Uint64Var(&f.firstSeed, "first-seed", 1, "first seed of each scenario in a mutant's swarm: a campaign extended over more seeds runs its survivors again from where it stopped (with another --out)")
	fl.StringVar(&f.scenarios, "scenario", "single-broker,leader-crash", "scenarios the swarms run, comma-separated, or 'all'")
	fl.IntVar(&f.parallel, "parallel", 2, "worker processes per swarm")
	fl.DurationVar(&f.run, "run", 0, "run length of each seed (default: the scenario's)")
	fl.DurationVar(&f.drain, "drain", 0, "drain length of each seed (default: the scenario's)")
	fl.DurationVar(&f.seedTimeout, "seed-timeout", 10*time.Minute, "wall time a seed may take; a mutant that hangs a seed is caught (generous: on a loaded machine a sound seed can take minutes)")
	fl.IntSliceVar(&f.only, "only", nil, "run only the drawn mutants of these numbers (as --list numbers them)")
	fl.StringArrayVar(&f.sites, "site", nil, "instead of a draw, the mutants at FILE:LINE or FILE:LINE:CHANGE (the original text, such as '<', or the kind; repeatable)")
	fl.StringVar(&f.out, "out", "", "append each mutant's outcome to this file as a JSON line as soon as it is known; mutants it already holds are not run again (a stopped campaign resumes)")
	fl.StringVar(&f.equivalent, "equivalent", "", "a file of mutants argued equivalent, one a line: FILE FUNC KIND \"CONTEXT\"[#N] REASON, as --list names sites; they are not run and not counted, and one caught all the same is reported")
	fl.BoolVar(&f.list, "list", false, "list the drawn mutants and stop")
	fl.BoolVar(&f.jsonOut, "json", false, "print the outcomes as JSON")
	fl.BoolVar(&f.tests, "tests", false, "also run the mutated package's own tests against each mutant the swarm leaves alive")
	fl.BoolVar(&f.noSwarm, "no-swarm", false, "with --tests, run no swarm: every mutant that builds to a new program counts as a survivor and its package's tests alone judge it (the tests' own score)")
	fl.DurationVar(&f.testTimeout, "test-timeout", 10*time.Minute, "with --tests, how long a package's tests may run (go test -timeout); a mutant that hangs them is caught")
	return cmd
}

// scenarioCount is how many scenarios --scenario names.
func (f mutateFlags) scenarioCount() (int, error) {
	if f.scenarios == "all" {
		return len(scenario.Names()), nil
	}
	names := strings.Split(f.scenarios, ",")
	for _, name := range names {
		if _, err := scenario.Lookup(name); err != nil {
			return 0, usageError("--scenario: %v", err)
		}
	}
	return len(names), nil
}

func runMutate(cmd *cobra.Command, f mutateFlags) error {
	if f.mutants < 1 || f.seeds < 1 {
		return usageError("--mutants and --seeds must be at least 1")
	}
	if f.parallel < 1 {
		return usageError("--parallel must be at least 1")
	}
	if f.firstSeed < 1 {
		return usageError("--first-seed must be at least 1")
	}
	if _, err := f.scenarioCount(); err != nil {
		return err
	}
	if f.noSwarm && !f.tests {
		return usageError("--no-swarm needs --tests: nothing would judge the mutants")
	}
	var all []mutant
	for _, pkg := range f.packages {
		found, err := findMutants(pkg)
		if err != nil {
			return usageError("--packages %s: %v", pkg, err)
		}
		if len(found) == 0 {
			return usageError("--packages %s: no mutation sites (is it a package directory of this module?)", pkg)
		}
		all = append(all, found...)
	}
	picked, err := onlyMutants(pickMutants(all, f.mutants, f.seed), f.only)
	if err != nil {
		return err
	}
	if len(f.sites) > 0 {
		if picked, err = mutantsAt(all, f.sites); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if f.list {
		fmt.Fprintf(out, "%d mutation sites; drawn:\n", len(all))
		for _, m := range picked {
			fmt.Fprintf(out, "%3d %s (column %d)\n    %s\n", m.ID, m, m.Column, m.site())
		}
		return nil
	}
	work, err := os.MkdirTemp("", "sluice-mutate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	original, buildErr, err := buildProgram(nil, work, mutateMain)
	if err != nil || buildErr != "" {
		return fmt.Errorf("build the unmutated tree: %v%s", err, buildErr)
	}
	originalSum, err := fileSum(original)
	if err != nil {
		return err
	}
	done, err := recordedOutcomes(f.out)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	argued, err := arguedEquivalents(f.equivalent, all)
	if err != nil {
		return err
	}
	status := newStatusLine(cmd.ErrOrStderr())
	var outcomes []mutantOutcome
	for i, m := range picked {
		o, resumed := done[m.key()]
		reason, isArgued := argued[m.site()]
		switch {
		case resumed:
			o.mutant = m                // where it is now
			o = withArgument(o, argued) // a campaign resumed: this one ran before
		case isArgued:
			o = mutantOutcome{mutant: m, Result: mutEquivalent, Detail: "argued: " + reason}
		default:
			status.show(fmt.Sprintf("mutant %d/%d: %s", i+1, len(picked), m), false)
			began := time.Now()
			if o, err = tryMutant(m, f, work, originalSum); err != nil {
				return err
			}
			o.Seconds = time.Since(began).Round(time.Second).Seconds()
			if err := appendOutcome(f.out, o); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
		}
		if f.tests && o.Result == mutSurvived && o.Tests == "" {
			status.show(fmt.Sprintf("mutant %d/%d: %s: its package's tests", i+1, len(picked), m), false)
			if o.Tests, err = runPackageTests(m, work, f.testTimeout); err != nil {
				return err
			}
			// A later line of the same mutant wins when the file is read.
			if err := appendOutcome(f.out, o); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
		}
		outcomes = append(outcomes, o)
	}
	status.done()
	return printMutationReport(out, len(all), outcomes, f.jsonOut)
}

// site names a mutant as --equivalent and --out do: its file, function,
// kind and context, quoted, and #N for the Nth of that function's sites
// with the same kind and context:
//
//	workloads/kafka/deadline.go (*deadlines).set flip-comparison "at <= e.at"
//
// Lines moving around it leave the name alone; an edit of its function
// can renumber it, and one of its text renames it.
func (m mutant) site() string {
	site := fmt.Sprintf("%s %s %s %q", m.File, m.Func, m.Kind, m.Context)
	if m.Occurrence > 1 {
		site += fmt.Sprintf("#%d", m.Occurrence)
	}
	return site
}

// parseSite splits an --equivalent line into its site and the rest.
func parseSite(line string) (site, rest string, err error) {
	fields := strings.SplitN(line, " ", 4)
	if len(fields) < 4 {
		return "", "", errors.New(`want FILE FUNC KIND "CONTEXT"[#N] REASON`)
	}
	quoted, err := strconv.QuotedPrefix(fields[3])
	if err != nil {
		return "", "", fmt.Errorf("context %.20q...: not a quoted string", fields[3])
	}
	after := fields[3][len(quoted):]
	if strings.HasPrefix(after, "#") {
		n, _, _ := strings.Cut(after, " ")
		quoted += n
		after = after[len(n):]
	}
	return strings.Join(fields[:3], " ") + " " + quoted, strings.TrimSpace(after), nil
}

// arguedEquivalentsMax bounds the lines of an --equivalent file.
const arguedEquivalentsMax = 10_000

// arguedEquivalents reads the mutants name argues equivalent, keyed by
// site, with their reasons. Every line must name a mutation site of all
// and give a reason: a stale or bare entry would hide a survivor.
func arguedEquivalents(name string, all []mutant) (map[string]string, error) {
	argued := map[string]string{}
	if name == "" {
		return argued, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usageError("--equivalent: %v", err)
	}
	sites := map[string]bool{}
	for _, m := range all {
		sites[m.site()] = true
	}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i >= arguedEquivalentsMax {
			return nil, usageError("--equivalent %s: more than %d lines", name, arguedEquivalentsMax)
		}
		site, reason, err := parseSite(line)
		if err == nil && reason == "" {
			err = errors.New("no reason given")
		}
		if err != nil {
			return nil, usageError("--equivalent %s line %d: %v", name, i+1, err)
		}
		if !sites[site] {
			return nil, usageError("--equivalent %s line %d: no mutation site %s (see --list)", name, i+1, site)
		}
		argued[site] = reason
	}
	return argued, nil
}

// withArgument applies an argument of equivalence to an outcome a
// resumed campaign recorded: a survivor becomes equivalent; a caught
// mutant stays caught, its detail saying the argument was wrong.
func withArgument(o mutantOutcome, argued map[string]string) mutantOutcome {
	reason, ok := argued[o.site()]
	switch {
	case !ok:
	case o.Result == mutSurvived:
		o.Result, o.Detail = mutEquivalent, "argued: "+reason
	case o.Result == mutCaught:
		o.Detail += " (argued equivalent, wrongly: " + reason + ")"
	}
	return o
}

// onlyMutants keeps the drawn mutants numbered in ids (all when empty).
func onlyMutants(picked []mutant, ids []int) ([]mutant, error) {
	if len(ids) == 0 {
		return picked, nil
	}
	var kept []mutant
	for _, id := range ids {
		if id < 1 || id > len(picked) {
			return nil, usageError("--only %d: the draw numbers its mutants 1 to %d", id, len(picked))
		}
		kept = append(kept, picked[id-1])
	}
	return kept, nil
}

// mutantsAt picks the mutants at the named sites, FILE:LINE or
// FILE:LINE:CHANGE where CHANGE is the original text or the kind; a
// site that names no mutant is an error.
func mutantsAt(all []mutant, sites []string) ([]mutant, error) {
	var picked []mutant
	for _, site := range sites {
		parts := strings.SplitN(site, ":", 3)
		var line int
		if len(parts) < 2 {
			return nil, usageError("--site %q: want FILE:LINE or FILE:LINE:CHANGE", site)
		}
		if _, err := fmt.Sscan(parts[1], &line); err != nil {
			return nil, usageError("--site %q: line %q is not a number", site, parts[1])
		}
		found := 0
		for _, m := range all {
			if filepath.Clean(m.File) != filepath.Clean(parts[0]) || m.Line != line {
				continue
			}
			if len(parts) == 3 && parts[2] != m.Original && parts[2] != string(m.Kind) {
				continue
			}
			m.ID = len(picked) + 1
			picked = append(picked, m)
			found++
		}
		if found == 0 {
			return nil, usageError("--site %q: no mutation site there (see --list)", site)
		}
	}
	return picked, nil
}

// recordedOutcomes reads the outcomes an earlier run of the same
// campaign appended to name, keyed by mutant, so that a campaign stopped
// part way resumes where it stopped. A missing file holds none.
func recordedOutcomes(name string) (map[string]mutantOutcome, error) {
	done := map[string]mutantOutcome{}
	if name == "" {
		return done, nil
	}
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o mutantOutcome
		if err := json.Unmarshal(line, &o); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, i+1, err)
		}
		done[o.key()] = o
	}
	return done, nil
}

func appendOutcome(name string, o mutantOutcome) error {
	if name == "" {
		return nil
	}
	line, err := json.Marshal(o)
	if err != nil {
		return err
	}
	file, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := file.Write(append(line, '\n')); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// tryMutant builds sluice with m and runs its swarm.
func tryMutant(m mutant, f mutateFlags, work, originalSum string) (mutantOutcome, error) {
	o := mutantOutcome{mutant: m}
	dir := filepath.Join(work, fmt.Sprintf("m%d", m.ID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return o, err
	}
	binary, buildErr, err := buildProgram(&m, dir, mutateMain)
	if err != nil {
		return o, err
	}
	if buildErr != "" {
		o.Result, o.Detail = mutStillborn, buildErr
		return o, nil
	}
	sum, err := fileSum(binary)
	if err != nil {
		return o, err
	}
	if sum == originalSum {
		o.Result, o.Detail = mutEquivalent, "builds to the unmutated program"
		return o, nil
	}
	if f.noSwarm {
		o.Result, o.Detail = mutSurvived, "no swarm run"
		return o, nil
	}
	scenarios, _ := f.scenarioCount()
	perScenario := (f.seeds + scenarios - 1) / scenarios // the swarm goes round the scenarios seed by seed
	args := []string{"sim", "swarm", "--scenario", f.scenarios, "--seeds", fmt.Sprint(perScenario), "--seed", fmt.Sprint(f.firstSeed),
		"--parallel", fmt.Sprint(f.parallel), "--max-failures", "1", "--json",
		"--seed-timeout", f.seedTimeout.String(), "--failures-dir", filepath.Join(dir, "failures")}
	if f.run > 0 {
		args = append(args, "--run", f.run.String())
	}
	if f.drain > 0 {
		args = append(args, "--drain", f.drain.String())
	}
	swarm := exec.Command(binary, args...)
	var stdout bytes.Buffer
	swarm.Stdout, swarm.Stderr = &stdout, io.Discard
	runErr := swarm.Run()
	os.RemoveAll(dir) // the binary and any failing runs: tens of MB a mutant
	var s swarmSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		o.Result, o.Detail = mutCaught, fmt.Sprintf("the mutant's swarm did not finish: %v", runErr)
		return o, nil
	}
	o.Seeds = s.Seeds
	if s.Failed == 0 {
		o.Result = mutSurvived
		return o, nil
	}
	r := s.Failures[0]
	o.Result, o.Detail = mutCaught, fmt.Sprintf("%s seed %d: %s", r.Scenario, r.Seed, failureText(r))
	return o, nil
}

// runPackageTests runs the tests of m's package with m in place, and
// returns "passed" or testsFailedPrefix and what failed first.
func runPackageTests(m mutant, work string, timeout time.Duration) (string, error) {
	dir := filepath.Join(work, fmt.Sprintf("t%d", m.ID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	overlay, err := writeOverlay(m, dir)
	if err != nil {
		return "", err
	}
	pkg := "./" + filepath.ToSlash(filepath.Dir(m.File))
	args := []string{"test", "-overlay", overlay, "-count=1", "-timeout", timeout.String(), pkg}
	if usesRapid(filepath.Dir(m.File)) {
		// A failing rapid test saves its case under the package's
		// testdata, where the unmutated tree's tests would replay it.
		args = append(args, "-args", "-rapid.nofailfile")
	}
	test := exec.Command("go", args...)
	out, err := test.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "passed", nil
	case errors.As(err, &exit):
		return testsFailedPrefix + firstFailure(string(out)), nil
	default:
		return "", fmt.Errorf("go test %s: %w", pkg, err)
	}
}

// usesRapid says whether a package's tests use rapid, whose flags the
// test binary then takes.
func usesRapid(dir string) bool {
	tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, name := range tests {
		if src, err := os.ReadFile(name); err == nil && bytes.Contains(src, []byte(`"pgregory.net/rapid"`)) {
			return true
		}
	}
	return false
}

// firstFailure is the first failing test go test names, or its first line.
func firstFailure(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "--- FAIL: "); ok {
			return name
		}
		if strings.HasPrefix(line, "panic: ") {
			return line
		}
	}
	return firstLine(out)
}

// mutateMain is the program a campaign builds and runs its swarms with.
const mutateMain = "./cmd/sluice"

// buildProgram builds mainPkg, with m's file replaced through an
// overlay when m is not nil; a mutant that does not compile returns the
// compiler's words. The build leaves out paths, symbols and the build id,
// so that two trees that compile to the same code give the same bytes.
func buildProgram(m *mutant, dir, mainPkg string) (binary, buildErr string, err error) {
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid="}
	if m != nil {
		overlay, err := writeOverlay(*m, dir)
		if err != nil {
			return "", "", err
		}
		args = append(args, "-overlay", overlay)
	}
	binary = filepath.Join(dir, "sluice")
	build := exec.Command("go", append(args, "-o", binary, mainPkg)...)
	out, err := build.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", firstLine(string(out)), nil
	}
	if err != nil {
		return "", "", fmt.Errorf("go build: %w", err)
	}
	return binary, "", nil
}

// writeOverlay writes m's file and the overlay that puts it in place of
// the original, and returns the overlay's name.
func writeOverlay(m mutant, dir string) (string, error) {
	src, err := os.ReadFile(m.File)
	if err != nil {
		return "", err
	}
	mutated := append(append(append([]byte{}, src[:m.start]...), m.Mutated...), src[m.end:]...)
	file := filepath.Join(dir, filepath.Base(m.File))
	if err := os.WriteFile(file, mutated, 0o644); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		return "", err
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: file}})
	name := filepath.Join(dir, "overlay.json")
	return name, os.WriteFile(name, overlay, 0o644)
}

func fileSum(name string) (string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func firstLine(s string) string {
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return strings.TrimSpace(s)
}

func printMutationReport(out io.Writer, sites int, outcomes []mutantOutcome, jsonOut bool) error {
	count := map[string]int{}
	for _, o := range outcomes {
		count[o.Result]++
	}
	caught, survived := count[mutCaught], count[mutSurvived]
	score := 0.0
	if caught+survived > 0 {
		score = float64(caught) / float64(caught+survived)
	}
	tested, byTests := 0, 0
	for _, o := range outcomes {
		if o.Result == mutSurvived && o.Tests != "" {
			tested++
			if o.caughtByTests() {
				byTests++
			}
		}
	}
	if jsonOut {
		report := map[string]any{
			"sites": sites, "caught": caught, "survived": survived, "stillborn": count[mutStillborn],
			"equivalent": count[mutEquivalent], "score": score, "mutants": outcomes,
		}
		if tested > 0 {
			report["survivors_tested"], report["caught_by_tests"] = tested, byTests
		}
		return json.NewEncoder(out).Encode(report)
	}
	rows := make([][]string, 0, len(outcomes))
	for _, o := range outcomes {
		detail := o.Detail
		if o.Tests != "" {
			detail = strings.TrimSpace(detail + " tests " + o.Tests)
		}
		rows = append(rows, []string{fmt.Sprint(o.ID), fmt.Sprintf("%s:%d:%d", o.File, o.Line, o.Column), string(o.Kind),
			o.Original + " -> " + o.Mutated, o.Result, fmt.Sprint(o.Seeds), detail})
	}
	if err := reports.WriteTable(out, []string{"mutant", "where", "kind", "change", "result", "seeds", "detail"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d mutants of %d sites: %d caught, %d survived, %d did not build, %d equivalent; caught %.0f%% of those that count\n",
		len(outcomes), sites, caught, survived, count[mutStillborn], count[mutEquivalent], 100*score)
	if tested > 0 {
		fmt.Fprintf(out, "their packages' tests caught %d of the %d survivors they ran against: %d of %d caught by the swarm or the tests (%.0f%%)\n",
			byTests, tested, caught+byTests, caught+survived, 100*float64(caught+byTests)/float64(caught+survived))
	}
	return nil
}
