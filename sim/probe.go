package sim

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// Probes mark rare paths: a torn tail truncated at recovery, an index
// rebuilt, a log reopened after a failed fsync. Code declares each probe
// once, at package initialisation, and hits it where the path runs. A
// simulated world counts the hits and notes each in its trace; a swarm
// reports which probes fired in how many seeds and which never did, so a
// test that passes without exercising its paths shows up as weak.

// Probe is a declared probe.
type Probe struct {
	Name string
	Help string
}

// ProbeName names a declared probe; only DeclareProbe makes one.
type ProbeName string

var declaredProbes = map[ProbeName]Probe{}

// DeclareProbe declares a probe; call it from a package-level var. A name
// declared twice is a programming error.
func DeclareProbe(name, help string) ProbeName {
	Assert(name != "" && !strings.ContainsAny(name, " \t\n"), "probe name %q", name)
	_, dup := declaredProbes[ProbeName(name)]
	Assert(!dup, "probe %q declared twice", name)
	declaredProbes[ProbeName(name)] = Probe{Name: name, Help: help}
	return ProbeName(name)
}

// DeclaredProbes lists every declared probe, sorted by name.
func DeclaredProbes() []Probe {
	probes := make([]Probe, 0, len(declaredProbes))
	for _, p := range declaredProbes {
		probes = append(probes, p)
	}
	slices.SortFunc(probes, func(a, b Probe) int { return strings.Compare(a.Name, b.Name) })
	return probes
}

// ProbeID is a probe's number for trace entries: a hash of its name, so
// that it does not depend on the order packages declare probes in.
func (p ProbeName) ProbeID() uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

// Prober counts probe hits; worlds implement it.
type Prober interface {
	Hit(p ProbeName)
}

// Hit records that the process ran a probed path. Without a Prober (a
// process started by hand in a test) it does nothing.
func (e Env) Hit(p ProbeName) {
	_, declared := declaredProbes[p]
	Assert(declared, "probe %q hit but never declared", p)
	if e.Prober != nil {
		e.Prober.Hit(p)
	}
}

// ProbeCounts are probe hits by name.
type ProbeCounts map[string]int64

func (c ProbeCounts) String() string {
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s×%d", n, c[n])
	}
	return strings.Join(parts, ", ")
}
