package scenario

import (
	"slices"
	"testing"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Every scenario named in probesReached exists and every probe it names
// is declared: a misspelt name would be expected and never hit.
func TestProbesReachedNameDeclaredProbes(t *testing.T) {
	declared := map[string]bool{}
	for _, p := range sim.DeclaredProbes() {
		declared[p.Name] = true
	}
	for name, probes := range probesReached {
		if _, err := Lookup(name); err != nil {
			t.Errorf("probesReached: %v", err)
		}
		for _, p := range probes {
			if !declared[p] {
				t.Errorf("probesReached[%q]: %q is not a declared probe", name, p)
			}
		}
	}
}

// Every scenario named in faultsActed exists and every op it names is a
// fault op.
func TestFaultsActedNameFaultOps(t *testing.T) {
	for name, ops := range faultsActed {
		if _, err := Lookup(name); err != nil {
			t.Errorf("faultsActed: %v", err)
		}
		for _, op := range ops {
			if !slices.Contains(faults.Ops(), faults.Op(op)) {
				t.Errorf("faultsActed[%q]: %q is not a fault op", name, op)
			}
		}
	}
}
