package sim

import (
	"strings"
	"testing"
)

type countingProber map[ProbeName]int

func (c countingProber) Hit(p ProbeName) { c[p]++ }

func TestProbesAreDeclaredOnceAndCounted(t *testing.T) {
	p := DeclareProbe("test/probe-counted", "a probe of this test")
	found := false
	for _, d := range DeclaredProbes() {
		found = found || d.Name == string(p)
	}
	if !found {
		t.Fatal("a declared probe is not listed")
	}
	counts := countingProber{}
	env := Env{Prober: counts}
	env.Hit(p)
	env.Hit(p)
	Env{}.Hit(p) // no prober: nothing to count, no failure
	if counts[p] != 2 {
		t.Fatalf("%d hits counted, want 2", counts[p])
	}
	mustPanic(t, "declared twice", func() { DeclareProbe("test/probe-counted", "again") })
	mustPanic(t, "never declared", func() { env.Hit("test/never-declared") })
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), want) {
			t.Fatalf("got panic %v, want one saying %q", r, want)
		}
	}()
	f()
}
