package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-sim/sluice/reports"
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
	ID         int        `json:"id"`
	File       string     `json:"file"`
	Line       int        `json:"line"`
	Kind       mutantKind `json:"kind"`
	Original   string     `json:"original"`
	Mutated    string     `json:"mutated"`
	start, end int
}

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
	add := func(kind mutantKind, from, to token.Pos, replacement string) {
		start, end := fset.Position(from).Offset, fset.Position(to).Offset
		out = append(out, mutant{File: name, Line: fset.Position(from).Line, Kind: kind,
			Original: string(src[start:end]), Mutated: replacement, start: start, end: end})
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if flip, ok := flips[n.Op]; ok {
				add(mutFlipComparison, n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), flip)
			}
			if lit, ok := n.Y.(*ast.BasicLit); ok && lit.Kind == token.INT && lit.Value == "1" &&
				(n.Op == token.ADD || n.Op == token.SUB) {
				other := map[token.Token]string{token.ADD: "-", token.SUB: "+"}[n.Op]
				add(mutOffByOne, n.OpPos, n.OpPos+1, other)
			}
		case *ast.IfStmt:
			if isErrCheck(n.Cond) {
				text := string(src[fset.Position(n.Cond.Pos()).Offset:fset.Position(n.Cond.End()).Offset])
				add(mutSkipCheck, n.Cond.Pos(), n.Cond.End(), "("+text+") && false")
			}
		case *ast.ExprStmt:
			if call, ok := n.X.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && slices.Contains(droppedCalls, sel.Sel.Name) {
					add(mutDropCall, n.Pos(), n.End(), "{}")
				}
			}
		}
		return true
	})
	return out
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

// pickMutants draws n of the sites with a seeded random stream, so a
// campaign is repeatable, and numbers them.
func pickMutants(all []mutant, n int, seed uint64) []mutant {
	r := rand.New(rand.NewPCG(seed, 0x6d7574616e74))
	picked := slices.Clone(all)
	r.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	picked = picked[:min(n, len(picked))]
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

// mutantOutcome is what a mutant's swarm found.
type mutantOutcome struct {
	mutant
	// Result is "caught", "survived" or "stillborn" (did not build).
	Result string `json:"result"`
	// Detail names the seed and checks that caught it, or the build error.
	Detail string `json:"detail,omitempty"`
	Seeds  int    `json:"seeds"`
}

type mutateFlags struct {
	packages    []string
	mutants     int
	seed        uint64
	seeds       int
	scenarios   string
	parallel    int
	run, drain  time.Duration
	seedTimeout time.Duration
	list        bool
	jsonOut     bool
}

func newSimMutateCommand() *cobra.Command {
	var f mutateFlags
	cmd := &cobra.Command{
		Use:   "mutate",
		Short: "Plant mutations in the source, run a bounded swarm against each, and report the share caught",
		Long: `Run a mutation campaign from a checkout of sluice: find the mutation sites
of the given packages (flipped comparisons, off-by-ones, skipped error
checks, dropped Sync/Truncate/Flush/Remove/Rename calls), draw --mutants of
them with --seed, build sluice with each mutant through 'go build -overlay'
(the tree is not edited), and run a swarm of at most --seeds seeds per
scenario against it, stopping at its first failure. A mutant is caught when
some seed fails, survives when none does, and is stillborn when it does not
build. The report gives the share caught and lists the survivors: each is a
mistake the scenarios cannot see.

It needs the Go toolchain and the source tree (run it from the module).`,
		Example: `  sluice sim mutate --packages ./broker/storage,./workloads/kafka --mutants 50 --seeds 200
  sluice sim mutate --packages ./broker/storage --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMutate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.packages, "packages", []string{"./broker/storage", "./workloads/kafka"}, "package directories to mutate")
	fl.IntVar(&f.mutants, "mutants", 50, "how many mutants to draw")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the draw")
	fl.IntVar(&f.seeds, "seeds", 200, "at most this many seeds of each scenario per mutant")
	fl.StringVar(&f.scenarios, "scenario", "all", "scenarios the swarms run")
	fl.IntVar(&f.parallel, "parallel", 2, "worker processes per swarm")
	fl.DurationVar(&f.run, "run", 0, "run length of each seed (default: the scenario's)")
	fl.DurationVar(&f.drain, "drain", 0, "drain length of each seed (default: the scenario's)")
	fl.DurationVar(&f.seedTimeout, "seed-timeout", 2*time.Minute, "wall time a seed may take; a mutant that hangs a seed is caught")
	fl.BoolVar(&f.list, "list", false, "list the drawn mutants and stop")
	fl.BoolVar(&f.jsonOut, "json", false, "print the outcomes as JSON")
	return cmd
}

func runMutate(cmd *cobra.Command, f mutateFlags) error {
	if f.mutants < 1 || f.seeds < 1 {
		return usageError("--mutants and --seeds must be at least 1")
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
	picked := pickMutants(all, f.mutants, f.seed)
	out := cmd.OutOrStdout()
	if f.list {
		fmt.Fprintf(out, "%d mutation sites; drawn:\n", len(all))
		for _, m := range picked {
			fmt.Fprintf(out, "%3d %s\n", m.ID, m)
		}
		return nil
	}
	work, err := os.MkdirTemp("", "sluice-mutate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	status := newStatusLine(cmd.ErrOrStderr())
	var outcomes []mutantOutcome
	for i, m := range picked {
		status.show(fmt.Sprintf("mutant %d/%d: %s", i+1, len(picked), m), false)
		o, err := tryMutant(m, f, work)
		if err != nil {
			return err
		}
		outcomes = append(outcomes, o)
	}
	status.done()
	return printMutationReport(out, len(all), outcomes, f.jsonOut)
}

// tryMutant builds sluice with m and runs its swarm.
func tryMutant(m mutant, f mutateFlags, work string) (mutantOutcome, error) {
	o := mutantOutcome{mutant: m}
	dir := filepath.Join(work, fmt.Sprintf("m%d", m.ID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return o, err
	}
	binary, buildErr, err := buildMutant(m, dir)
	if err != nil {
		return o, err
	}
	if buildErr != "" {
		o.Result, o.Detail = "stillborn", buildErr
		return o, nil
	}
	args := []string{"sim", "swarm", "--scenario", f.scenarios, "--seeds", fmt.Sprint(f.seeds),
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
	var s swarmSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		o.Result, o.Detail = "caught", fmt.Sprintf("the mutant's swarm did not finish: %v", runErr)
		return o, nil
	}
	o.Seeds = s.Seeds
	if s.Failed == 0 {
		o.Result = "survived"
		return o, nil
	}
	r := s.Failures[0]
	o.Result, o.Detail = "caught", fmt.Sprintf("%s seed %d: %s", r.Scenario, r.Seed, failureText(r))
	return o, nil
}

// buildMutant builds the command with m's file replaced through an
// overlay. A mutant that does not compile returns the compiler's words.
func buildMutant(m mutant, dir string) (binary, buildErr string, err error) {
	src, err := os.ReadFile(m.File)
	if err != nil {
		return "", "", err
	}
	mutated := append(append(append([]byte{}, src[:m.start]...), m.Mutated...), src[m.end:]...)
	file := filepath.Join(dir, filepath.Base(m.File))
	if err := os.WriteFile(file, mutated, 0o644); err != nil {
		return "", "", err
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		return "", "", err
	}
	overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: file}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return "", "", err
	}
	binary = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-overlay", overlayFile, "-o", binary, "./cmd/sluice")
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

func firstLine(s string) string {
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return strings.TrimSpace(s)
}

func printMutationReport(out io.Writer, sites int, outcomes []mutantOutcome, jsonOut bool) error {
	caught, survived, stillborn := 0, 0, 0
	for _, o := range outcomes {
		switch o.Result {
		case "caught":
			caught++
		case "survived":
			survived++
		default:
			stillborn++
		}
	}
	score := 0.0
	if caught+survived > 0 {
		score = float64(caught) / float64(caught+survived)
	}
	if jsonOut {
		return json.NewEncoder(out).Encode(map[string]any{
			"sites": sites, "caught": caught, "survived": survived, "stillborn": stillborn,
			"score": score, "mutants": outcomes,
		})
	}
	rows := make([][]string, 0, len(outcomes))
	for _, o := range outcomes {
		rows = append(rows, []string{fmt.Sprint(o.ID), fmt.Sprintf("%s:%d", o.File, o.Line), string(o.Kind),
			o.Original + " -> " + o.Mutated, o.Result, o.Detail})
	}
	if err := reports.WriteTable(out, []string{"mutant", "where", "kind", "change", "result", "detail"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d mutants of %d sites: %d caught, %d survived, %d did not build; caught %.0f%% of those that built\n",
		len(outcomes), sites, caught, survived, stillborn, 100*score)
	return nil
}
