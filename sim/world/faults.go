package world

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

// The methods below are the world's fault actions. Each takes effect at the
// current simulated time, adds an entry to the trace and a line to Events,
// and fails on a name that is not a node. An action that finds nothing to
// act on (a kill of a node already down) changes nothing, notes nothing and
// returns an error wrapping sim.ErrNoEffect that says why.

func (w *World) node(name string) (*Node, error) {
	n := w.nodes[name]
	if n == nil {
		return nil, fmt.Errorf("no node %q (nodes: %s)", name, strings.Join(w.NodeNames(), ", "))
	}
	return n, nil
}

// noEffect is the error of an action that found nothing to act on.
func noEffect(format string, args ...any) error {
	return fmt.Errorf("%w: %s", sim.ErrNoEffect, fmt.Sprintf(format, args...))
}

// upNode is the named node if it is up; a node that is down has no
// process to kill, pause or power off.
func (w *World) upNode(name string) (*Node, error) {
	n, err := w.node(name)
	if err != nil {
		return nil, err
	}
	if !n.sn.Up() {
		return nil, noEffect("%s is already down", name)
	}
	return n, nil
}

func (w *World) fault(n *Node, what string) {
	id := uint64(1<<32 - 1)
	var sn *sched.Node
	if n != nil {
		id = uint64(n.sn.ID)
		sn = n.sn
	}
	label := ""
	if w.loop.Trace().Recording() {
		label = what
	}
	w.loop.Trace().Note(w.loop.Now(), sn, sched.KindFault, id, label)
	w.note("%s", what)
}

// Kill kills the node's processes, as kill -9 would: memory, timers and
// connections are gone (peers see resets), the page cache survives.
func (w *World) Kill(name string) error {
	n, err := w.upNode(name)
	if err != nil {
		return err
	}
	w.fault(n, "kill "+name)
	n.sn.Crash()
	w.net.Crash(name, true)
	n.disk.ProcessKill()
	return nil
}

// PowerLoss crashes the machine: as Kill, and whatever its disk had not
// made durable may be lost, kept or torn; peers are not told.
func (w *World) PowerLoss(name string) error {
	n, err := w.upNode(name)
	if err != nil {
		return err
	}
	w.fault(n, "power-loss "+name)
	n.sn.Crash()
	w.net.Crash(name, false)
	for _, loss := range n.disk.PowerLoss() {
		w.note("  %s disk: %s", name, loss)
	}
	return nil
}

// Restart boots a crashed node; its processes start again with what its
// disk kept. Restarting a running node does nothing.
func (w *World) Restart(name string) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	if n.sn.Up() {
		return noEffect("%s is running", name)
	}
	w.fault(n, "restart "+name)
	n.boot()
	return nil
}

// Pause stops running the node's callbacks, as a long GC pause or SIGSTOP.
func (w *World) Pause(name string) error {
	n, err := w.upNode(name)
	if err != nil {
		return err
	}
	if n.sn.Paused() {
		return noEffect("%s is already paused", name)
	}
	w.fault(n, "pause "+name)
	n.sn.Pause()
	return nil
}

// Resume runs a paused node's deferred callbacks.
func (w *World) Resume(name string) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	if !n.sn.Paused() {
		return noEffect("%s is not paused", name)
	}
	w.fault(n, "resume "+name)
	n.sn.Resume()
	return nil
}

// Partition cuts the network between groups of nodes, both ways.
func (w *World) Partition(groups [][]string) error {
	parts := make([]string, len(groups))
	for i, g := range groups {
		for _, name := range g {
			if _, err := w.node(name); err != nil {
				return err
			}
		}
		parts[i] = strings.Join(g, ",")
	}
	w.fault(nil, "partition "+strings.Join(parts, " | "))
	w.networkCut = true
	w.net.Partition(groups...)
	return nil
}

// Block cuts one direction of one link.
func (w *World) Block(from, to string) error {
	if _, err := w.node(from); err != nil {
		return err
	}
	if _, err := w.node(to); err != nil {
		return err
	}
	w.fault(nil, "block "+from+"->"+to)
	w.networkCut = true
	w.net.Block(from, to)
	return nil
}

// Heal ends every partition and block.
func (w *World) Heal() error {
	if !w.networkCut {
		return noEffect("no partition or block is in force")
	}
	w.fault(nil, "heal")
	w.net.HealAll()
	w.networkCut = false
	return nil
}

// SlowDisk multiplies the node's disk service times by factor.
func (w *World) SlowDisk(name string, factor float64) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("slow-disk %s x%g", name, factor))
	n.diskFaulted = true
	n.disk.SetSlowFactor(factor)
	return nil
}

// FailSyncs makes the node's next count syncs fail with EIO.
func (w *World) FailSyncs(name string, count int) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("fail-syncs %s %d", name, count))
	n.diskFaulted = true
	n.disk.FailSyncs(count)
	return nil
}

// DiskCapacity sets the node's disk capacity; a capacity at or below what
// is used fills the disk.
func (w *World) DiskCapacity(name string, bytes int64) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("disk-capacity %s %d", name, bytes))
	w.setCapacity(n, bytes)
	return nil
}

// FillDisk leaves the node's disk no free space.
func (w *World) FillDisk(name string) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	// One byte is the least capacity: zero would mean "as configured".
	bytes := max(n.disk.UsedBytes(), 1)
	w.fault(n, fmt.Sprintf("disk-full %s (capacity %d)", name, bytes))
	w.setCapacity(n, bytes)
	return nil
}

func (w *World) setCapacity(n *Node, bytes int64) {
	n.diskFaulted = true
	n.disk.SetCapacity(bytes)
}

// Corrupt flips one bit in each of count random stored bytes of the node's
// disk.
func (w *World) Corrupt(name string, count int) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("corrupt %s %d", name, count))
	for _, flip := range n.disk.Corrupt(count) {
		w.note("  %s disk: flipped %s", name, flip)
	}
	return nil
}

// CorruptFile flips one bit in each of count random bytes of the named
// file on the node's disk: damage a scenario aims at one file. A file
// missing or empty is sim.ErrNoEffect.
func (w *World) CorruptFile(name, file string, count int) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	flips := n.disk.CorruptFile(file, count)
	if len(flips) == 0 {
		return fmt.Errorf("corrupt %s on %s: %w", file, name, sim.ErrNoEffect)
	}
	w.fault(n, fmt.Sprintf("corrupt %s %s %d", name, file, count))
	for _, flip := range flips {
		w.note("  %s disk: flipped %s", name, flip)
	}
	return nil
}

// ReadErrors makes each read on the node's disk fail with probability rate.
func (w *World) ReadErrors(name string, rate float64) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("read-errors %s %g", name, rate))
	n.diskFaulted = true
	n.disk.SetReadErrorRate(rate)
	return nil
}

// MetaErrors makes each create, remove, rename, mkdir and truncate on the
// node's disk fail with probability rate, and each write write a prefix
// and fail.
func (w *World) MetaErrors(name string, rate float64) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("meta-errors %s %g", name, rate))
	n.diskFaulted = true
	n.disk.SetMetaErrorRate(rate)
	return nil
}

// ClockJump moves the node's wall clock by d (negative: backwards).
func (w *World) ClockJump(name string, d time.Duration) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("clock-jump %s %v", name, d))
	n.clock.offset += d
	return nil
}

// ClockDrift makes the node's oscillator run ppm parts per million fast
// (negative: slow), which stretches its timers and monotonic time too.
func (w *World) ClockDrift(name string, ppm float64) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	w.fault(n, fmt.Sprintf("clock-drift %s %gppm", name, ppm))
	n.clock.setDrift(ppm)
	return nil
}

// DiskHeal ends slow-disk, fail-syncs, disk-full, read-errors and meta-errors on the
// node's disk. Corruption already done stays.
func (w *World) DiskHeal(name string) error {
	n, err := w.node(name)
	if err != nil {
		return err
	}
	if !n.diskFaulted {
		return noEffect("%s's disk has no fault to heal", name)
	}
	n.diskFaulted = false
	w.fault(n, "disk-heal "+name)
	n.disk.SetSlowFactor(1)
	n.disk.FailSyncs(0)
	n.disk.SetReadErrorRate(0)
	n.disk.SetMetaErrorRate(0)
	n.disk.SetCapacity(w.cfg.Disk.CapacityBytes)
	return nil
}
