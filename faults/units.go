package faults

import "time"

// A schedule shrinks by whole faults: an action that breaks something
// together with the action that undoes it. Dropping a restart but keeping
// its kill would leave the node down to the end and make a different check
// fail; dropping both keeps the question the same.

// Unit is one fault of a schedule: the indices of its actions, in order.
type Unit []int

// recoveryOf says which op undoes an op, and whether the two must name the
// same node.
var recoveryOf = map[Op]struct {
	op       Op
	sameNode bool
}{
	Kill: {Restart, true}, PowerLoss: {Restart, true}, Pause: {Resume, true},
	Partition: {Heal, false}, Block: {Heal, false},
	SlowDisk: {DiskHeal, true}, FailSyncs: {DiskHeal, true}, DiskFull: {DiskHeal, true},
	ReadErrors: {DiskHeal, true}, MetaErrors: {DiskHeal, true},
}

// Units groups a time-ordered schedule into faults: each action that
// breaks something with the first later action that undoes it, and every
// other action alone.
func (s Schedule) Units() []Unit {
	paired := make([]bool, len(s.Actions))
	var units []Unit
	for i, a := range s.Actions {
		if paired[i] {
			continue
		}
		unit := Unit{i}
		if rec, ok := recoveryOf[a.Op]; ok {
			for j := i + 1; j < len(s.Actions); j++ {
				b := s.Actions[j]
				if !paired[j] && b.Op == rec.op && (!rec.sameNode || b.Node == a.Node) {
					paired[j] = true
					unit = append(unit, j)
					break
				}
			}
		}
		units = append(units, unit)
	}
	return units
}

// Keep returns the schedule with only the actions of the given units, in
// their original order.
func (s Schedule) Keep(units []Unit) Schedule {
	keep := make([]bool, len(s.Actions))
	for _, u := range units {
		for _, i := range u {
			keep[i] = true
		}
	}
	var out Schedule
	for i, a := range s.Actions {
		if keep[i] {
			out.Actions = append(out.Actions, a)
		}
	}
	return out
}

// FaultTime is the time the schedule's faults last, added up: for each
// fault with a recovery, the time from one to the other.
func (s Schedule) FaultTime() time.Duration {
	var total time.Duration
	for _, u := range s.Units() {
		if len(u) == 2 {
			total += time.Duration(s.Actions[u[1]].At - s.Actions[u[0]].At)
		}
	}
	return total
}
