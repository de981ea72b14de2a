package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
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
	_, err := fmt.Sscanf(out[i:], "2 mutants of %d sites: %d caught, %d survived, %d did not build; caught %d%%",
		&sites, &caught, &survived, &stillborn, &score)
	if err != nil || caught+survived+stillborn != 2 || sites < 10 {
		t.Fatalf("closing line not read (%v):\n%s", err, out)
	}
}
