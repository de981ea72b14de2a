package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMutationSitesOfEachKind(t *testing.T) {
	src := []byte(`package p

func f(f file, n int) error {
	if n < 3 {
		n = n + 1
	}
	if err := f.Write(); err != nil {
		return err
	}
	f.Sync()
	return nil
}
`)
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mutantsOf(fset, file, "p.go", src) {
		got = append(got, m.String())
		mutated := string(src[:m.start]) + m.Mutated + string(src[m.end:])
		if _, err := parser.ParseFile(token.NewFileSet(), "p.go", mutated, 0); err != nil {
			t.Errorf("mutant %s does not parse: %v", m, err)
		}
	}
	want := []string{
		"p.go:4 flip-comparison: < -> <=",
		"p.go:5 off-by-one: + -> -",
		"p.go:7 skip-error-check: err != nil -> (err != nil) && false",
		"p.go:7 flip-comparison: != -> ==",
		"p.go:10 drop-call: f.Sync() -> {}",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sites:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMutantDrawIsRepeatable(t *testing.T) {
	all, err := findMutants("../../workloads/counter")
	if err != nil || len(all) < 10 {
		t.Fatalf("%d sites, %v", len(all), err)
	}
	a, b := pickMutants(all, 5, 7), pickMutants(all, 5, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("one seed drew two different sets of mutants")
	}
	if reflect.DeepEqual(a, pickMutants(all, 5, 8)) {
		t.Fatal("two seeds drew the same mutants")
	}
}

// TestMutantDrawGoesRoundTheFiles: a draw takes one site of each file
// before a second of any, so a file with hundreds of comparisons does
// not crowd out the rest.
func TestMutantDrawGoesRoundTheFiles(t *testing.T) {
	all, err := findMutants("../../broker/storage")
	if err != nil {
		t.Fatal(err)
	}
	sitesOf := map[string]int{}
	for _, m := range all {
		sitesOf[m.File]++
	}
	files := len(sitesOf)
	if files < 10 {
		t.Fatalf("%d files with sites", files)
	}
	for _, seed := range []uint64{1, 7, 99} {
		drawn := map[string]int{}
		for _, m := range pickMutants(all, files+3, seed) {
			drawn[m.File]++
		}
		if len(drawn) != files {
			t.Fatalf("seed %d: %d mutants came from %d of %d files", seed, files+3, len(drawn), files)
		}
		for name, n := range drawn {
			if n > 2 {
				t.Errorf("seed %d: %d mutants of %s before every file had two", seed, n, name)
			}
		}
	}
}

func TestMutantsAtSites(t *testing.T) {
	src := []byte("package p\n\nfunc f(a, b int) bool {\n\treturn a < 1 || b < 2\n}\n")
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := mutantsOf(fset, file, "p.go", src)
	got, err := mutantsAt(all, []string{"p.go:4:<"})
	if err != nil || len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
		t.Fatalf("p.go:4:< gave %v, %v; want both flips numbered 1 and 2", got, err)
	}
	for _, bad := range []string{"p.go:5", "p.go", "p.go:x", "p.go:4:>"} {
		if _, err := mutantsAt(all, []string{bad}); err == nil {
			t.Errorf("site %q named mutants", bad)
		}
	}
}

// TestEquivalentMutantBuildsTheSameProgram builds a small program and two
// mutants of its package: a comparison of constants that the compiler
// folds to the same answer gives the same bytes (equivalent, not
// counted), an off-by-one in what it prints does not. (The mutated
// package is not main, as in a campaign: a main package's bytes follow
// its source text.)
func TestEquivalentMutantBuildsTheSameProgram(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module m\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"m/p\"\n\nfunc main() { p.Print() }\n",
		"p/p.go": "package p\n\nconst n = 3\n\n// Print prints one more than n.\nfunc Print() {\n" +
			"\tif n < 0 {\n\t\tprintln(\"negative\")\n\t}\n\tprintln(n + 1)\n}\n",
	}
	all := mutantsOfModule(t, dir, files)
	sums := map[string]string{}
	for i, m := range append([]*mutant{nil}, &all[0], &all[1]) {
		out := filepath.Join(dir, fmt.Sprint("build", i))
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		binary, buildErr, err := buildProgram(m, out, ".")
		if err != nil || buildErr != "" {
			t.Fatalf("build %v: %v %s", m, err, buildErr)
		}
		name := "original"
		if m != nil {
			name = string(m.Kind)
		}
		if sums[name], err = fileSum(binary); err != nil {
			t.Fatal(err)
		}
	}
	if all[0].Kind != mutFlipComparison || all[1].Kind != mutOffByOne {
		t.Fatalf("sites %v, %v", all[0], all[1])
	}
	if sums["original"] != sums[string(mutFlipComparison)] {
		t.Error("n < 0 -> n <= 0 of a constant 3 built a different program")
	}
	if sums["original"] == sums[string(mutOffByOne)] {
		t.Error("n + 1 -> n - 1 built the same program")
	}
}

// TestMutationCampaignEndToEnd builds two mutants of the counter server
// and runs their swarms: each ends caught, survived or stillborn, and the
// report closes with the score.
func TestMutationCampaignEndToEnd(t *testing.T) {
	code, out := run(t, "../..", "sim", "mutate", "--packages", "./workloads/counter", "--mutants", "2", "--seed", "4",
		"--seeds", "4", "--scenario", "counter", "--run", "3s", "--drain", "1s")
	var sites, caught, survived, stillborn, score int
	i := strings.Index(out, "2 mutants of ")
	if code != 0 || i < 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var equivalent int
	_, err := fmt.Sscanf(out[i:], "2 mutants of %d sites: %d caught, %d survived, %d did not build, %d equivalent; caught %d%%",
		&sites, &caught, &survived, &stillborn, &equivalent, &score)
	if err != nil || caught+survived+stillborn+equivalent != 2 || sites < 10 {
		t.Fatalf("closing line not read (%v):\n%s", err, out)
	}
}

// TestCampaignResumesFromItsOutcomes: the outcomes a stopped campaign
// appended are read back keyed by mutant, two mutants of one line apart.
func TestCampaignResumesFromItsOutcomes(t *testing.T) {
	name := filepath.Join(t.TempDir(), "campaign.jsonl")
	if got, err := recordedOutcomes(name); err != nil || len(got) != 0 {
		t.Fatalf("a missing file gave %v, %v", got, err)
	}
	a := mutantOutcome{mutant: mutant{ID: 5, File: "p.go", Line: 4, Column: 9, Kind: mutFlipComparison, Original: "<", Mutated: "<=",
		Func: "f", Context: "a < b", Occurrence: 1}, Result: mutCaught, Detail: "single-broker seed 3: drained", Seeds: 3}
	b := a
	b.ID, b.Column, b.Occurrence, b.Result, b.Detail, b.Seeds = 6, 20, 2, mutSurvived, "", 200 // the same line, kind and change
	for _, o := range []mutantOutcome{a, b} {
		if err := appendOutcome(name, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := recordedOutcomes(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got[a.key()], a) || !reflect.DeepEqual(got[b.key()], b) {
		t.Fatalf("read back %+v", got)
	}
	if err := os.WriteFile(name, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := recordedOutcomes(name); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a damaged file gave %v", err)
	}
}

// TestArguedEquivalentMutants: a listed survivor becomes equivalent with
// its reason; a listed mutant that was caught stays caught and says the
// argument was wrong; an entry naming no site, or without a reason, is
// refused naming its line. The project's own list names real sites.
func TestArguedEquivalentMutants(t *testing.T) {
	all, err := findMutants("../../workloads/kafka")
	if err != nil {
		t.Fatal(err)
	}
	m := all[0]
	dir := t.TempDir()
	list := filepath.Join(dir, "equivalent.txt")
	if err := os.WriteFile(list, []byte("# a comment\n\n"+m.site()+" no run tells them apart\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	argued, err := arguedEquivalents(list, all)
	if err != nil {
		t.Fatal(err)
	}
	o := withArgument(mutantOutcome{mutant: m, Result: mutSurvived}, argued)
	if o.Result != mutEquivalent || o.Detail != "argued: no run tells them apart" {
		t.Fatalf("a listed survivor: %s %q, want equivalent with the reason", o.Result, o.Detail)
	}
	o = withArgument(mutantOutcome{mutant: m, Result: mutCaught, Detail: "seed 3"}, argued)
	if o.Result != mutCaught || !strings.Contains(o.Detail, "wrongly") {
		t.Fatalf("a listed mutant that was caught: %s %q, want caught, the argument named wrong", o.Result, o.Detail)
	}
	for _, bad := range []string{"nowhere.go f flip-comparison \"a < b\" reason\n", m.site() + "\n",
		"workloads/kafka/x.go f flip-comparison a < b reason\n", "one two\n"} {
		if err := os.WriteFile(list, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := arguedEquivalents(list, all); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("entry %q: error %v, want one naming line 1", bad, err)
		}
	}
	var sites []mutant
	for _, pkg := range []string{"../../broker/storage", "../../workloads/kafka"} {
		found, err := findMutants(pkg)
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, found...)
	}
	for i := range sites { // the list names files from the module's root
		sites[i].File = strings.TrimPrefix(sites[i].File, "../../")
	}
	if argued, err := arguedEquivalents("mutate_equivalent.txt", sites); err != nil || len(argued) == 0 {
		t.Fatalf("the project's list: %d entries, %v", len(argued), err)
	}
}

// TestMutateRefusesSeedZero: swarm seeds start at 1, so --first-seed 0 is
// refused naming the flag.
func TestMutateRefusesSeedZero(t *testing.T) {
	code, out := run(t, "../..", "sim", "mutate", "--first-seed", "0")
	if code == 0 || !strings.Contains(out, "--first-seed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestSitesKeepTheirNamesWhenLinesMove: a site is named by its function
// and text, numbered within its function, so a line added above it (an
// import, another function) leaves every name as it was, and names are
// unique within a package.
func TestSitesKeepTheirNamesWhenLinesMove(t *testing.T) {
	src := "package p\n\nfunc f(err error, n int) int {\n\tif err != nil {\n\t\treturn 0\n\t}\n" +
		"\tif err != nil {\n\t\treturn n + 1\n\t}\n\treturn n\n}\n\nfunc (s *set[K]) g(n int) bool { return n < 2 }\n"
	namesOf := func(src string) []string {
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, "p.go", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range mutantsOf(fset, file, "p.go", []byte(src)) {
			names = append(names, m.site())
		}
		return names
	}
	want := []string{
		`p.go f skip-error-check "err != nil"`, `p.go f flip-comparison "err != nil"`,
		`p.go f skip-error-check "err != nil"#2`, `p.go f flip-comparison "err != nil"#2`,
		`p.go f off-by-one "n + 1"`, `p.go (*set).g flip-comparison "n < 2"`,
	}
	if got := namesOf(src); !reflect.DeepEqual(got, want) {
		t.Fatalf("sites:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	moved := strings.Replace(src, "package p\n", "package p\n\nfunc h(a, b int) bool { return a > b }\n", 1)
	if got := namesOf(moved); len(got) != len(want)+1 || !reflect.DeepEqual(got[1:], want) {
		t.Fatalf("after a function added above: %v", got)
	}
	for _, pkg := range []string{"../../broker/storage", "../../workloads/kafka"} {
		all, err := findMutants(pkg)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range all {
			if seen[m.site()] {
				t.Errorf("two sites named %s", m.site())
			}
			seen[m.site()] = true
		}
	}
}

// TestDrawKeepsItsSitesWhenOthersChange: removing sites of one file, or
// a whole file, leaves the sites a draw takes from the other files.
func TestDrawKeepsItsSitesWhenOthersChange(t *testing.T) {
	all, err := findMutants("../../broker/storage")
	if err != nil {
		t.Fatal(err)
	}
	drawn := func(sites []mutant) map[string]bool {
		names := map[string]bool{}
		for _, m := range pickMutants(sites, 30, 1) {
			names[m.site()] = true
		}
		return names
	}
	before := drawn(all)
	gone := all[0].File
	var fewer []mutant
	for _, m := range all {
		if m.File != gone {
			fewer = append(fewer, m)
		}
	}
	after := drawn(fewer)
	kept := 0
	for name := range after {
		if before[name] {
			kept++
		}
	}
	// The gone file's place in each round falls to the files after it, so
	// the last round may take other files' sites; the rest stay.
	if kept < len(after)-len(after)/5 {
		t.Fatalf("a file removed: %d of %d drawn sites kept", kept, len(after))
	}
}

// mutantsOfModule writes files as a module in dir, moves there and
// returns the mutation sites of its package p, of which there are two.
func mutantsOfModule(t *testing.T, dir string, files map[string]string) []mutant {
	t.Helper()
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	all, err := findMutants("p")
	if err != nil || len(all) != 2 {
		t.Fatalf("%d sites, %v", len(all), err)
	}
	return all
}

// TestPackageTestsJudgeASurvivor: --tests runs the mutated package's own
// tests; one that a test pins down fails them and is named, one no test
// looks at passes.
func TestPackageTestsJudgeASurvivor(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module m\n\ngo 1.22\n",
		"p/p.go": "package p\n\n// Next is one more than n.\nfunc Next(n int) int { return n + 1 }\n\n" +
			"// Negative says whether n is below zero.\nfunc Negative(n int) bool { return n < 0 }\n",
		"p/p_test.go": "package p\n\nimport \"testing\"\n\nfunc TestNext(t *testing.T) {\n\tif Next(1) != 2 {\n\t\tt.Fatal(Next(1))\n\t}\n}\n",
	}
	all := mutantsOfModule(t, dir, files)
	got := map[mutantKind]string{}
	for _, m := range all {
		var err error
		if got[m.Kind], err = runPackageTests(m, dir, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(got[mutOffByOne], testsFailedPrefix+"TestNext") {
		t.Errorf("n + 1 -> n - 1: tests %q, want TestNext failing", got[mutOffByOne])
	}
	if got[mutFlipComparison] != "passed" {
		t.Errorf("n < 0 -> n <= 0, which no test looks at: tests %q", got[mutFlipComparison])
	}
	o := mutantOutcome{mutant: all[0], Result: mutSurvived, Tests: got[all[0].Kind]}
	var report strings.Builder
	if err := printMutationReport(&report, 2, []mutantOutcome{o, {mutant: all[1], Result: mutCaught}}, false); err != nil {
		t.Fatal(err)
	}
	want := "1 of 2 caught by the swarm or the tests (50%)"
	if o.caughtByTests() {
		want = "2 of 2 caught by the swarm or the tests (100%)"
	}
	if !strings.Contains(report.String(), want) {
		t.Errorf("report lacks %q:\n%s", want, report.String())
	}
}

// TestRapidPackagesGetNoFailFiles: a package whose tests use rapid is
// tested with -rapid.nofailfile, so that a mutant's failing case is not
// saved where the unmutated tree's tests would replay it.
func TestRapidPackagesGetNoFailFiles(t *testing.T) {
	if !usesRapid("../../broker/storage") {
		t.Error("broker/storage's tests use rapid; not seen")
	}
	if usesRapid("../../faults") {
		t.Error("faults' tests do not use rapid; seen")
	}
}
