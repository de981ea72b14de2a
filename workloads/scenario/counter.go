package scenario

import (
	"fmt"
	"slices"
	"time"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim/world"
	"github.com/sluice-sim/sluice/workloads/counter"
)

// The counter scenario: one durable counter server, three clients that
// increment it with unique ids and retry until acknowledged, and faults on
// the server and the network. It checks that every acknowledged increment
// survives a final power loss, that none is applied twice, and that the
// clients make progress once the faults heal.
func init() {
	Register(Definition{
		Name:    "counter",
		Summary: "a durable counter service and its retrying clients under crashes, partitions and disk faults",
		Bugs:    []faults.Bug{counter.BugAckBeforeSync, counter.BugDedupeOff, counter.BugMapOrder},
		Run:     20 * time.Second,
		Drain:   10 * time.Second,
		Budget: Budget{
			// About 20 times what seeds use: 6.4k events per simulated
			// second and an estimated 1.9 MiB at most over 200 seeds.
			EventsPerSecMax: 125_000,
			MemoryBytesMax:  32 << 20,
			// The client waits between attempts (a retry delay, a
			// timeout), so it cannot spin: time alone bounds a stall.
			StallMax: 5 * time.Second,
		},
		Build: buildCounter,
	})
}

const counterServer = "server"

var counterClients = []string{"c1", "c2", "c3"}

type counterCluster struct {
	o       Options
	w       *world.World
	results []*counter.Results
	// ackedAtHeal is how many increments had been acknowledged when the
	// faults healed.
	ackedAtHeal int
}

func buildCounter(w *world.World, o Options) Cluster {
	c := &counterCluster{o: o, w: w}
	w.AddNode(counterServer, counter.StartServer(counter.ServerConfig{Listen: ":7000", Bugs: o.Bugs}, nil))
	for i, name := range counterClients {
		r := &counter.Results{}
		c.results = append(c.results, r)
		cfg := counter.ClientConfig{Server: counterServer + ":7000", Index: uint32(i + 1), Bugs: o.Bugs}
		w.AddNode(name, counter.StartClient(cfg, r))
	}
	w.At(o.Run, func() { c.ackedAtHeal = c.acked() })
	return c
}

func (c *counterCluster) acked() int {
	n := 0
	for _, r := range c.results {
		n += len(r.Acked)
	}
	return n
}

func (c *counterCluster) Profile() faults.Profile {
	return faults.Profile{
		Targets:      []string{counterServer},
		Clients:      counterClients,
		IntervalMean: 2 * time.Second,
		DurationMax:  3 * time.Second,
		Kinds: []faults.Kind{faults.KindKill, faults.KindPowerLoss, faults.KindPause,
			faults.KindPartition, faults.KindBlock, faults.KindSlowDisk, faults.KindFailSyncs,
			faults.KindDiskFull, faults.KindReadErrors, faults.KindClockJump, faults.KindClockDrift},
	}
}

// Footprint estimates what the run holds, for the memory budget.
func (c *counterCluster) Footprint() Footprint {
	f := Footprint{DiskBytes: c.w.Node(counterServer).Disk().UsedBytes()}
	for _, r := range c.results {
		f.ClientBytes += int64(len(r.Acked)) * 8
	}
	return f
}

// Progress reports each client's acknowledged increments, for the
// no-progress watchdog. The clients never run out of increments to make.
func (c *counterCluster) Progress() []Activity {
	acts := make([]Activity, len(c.results))
	for i, r := range c.results {
		acts[i] = Activity{Name: "client " + counterClients[i], Mark: int64(len(r.Acked)), Waiting: true, Attempts: r.Retries,
			Describe: func() string {
				return fmt.Sprintf("no increment acknowledged; %d acknowledged, %d sent and %d retried in all", len(r.Acked), r.Sent, r.Retries)
			}}
	}
	return acts
}

// Finish cuts the server's power one last time, so that what counts is
// what a power loss leaves, and judges what its disk kept.
func (c *counterCluster) Finish(w *world.World) ([]Check, map[string]int64) {
	server := w.Node(counterServer)
	w.PowerLoss(counterServer)
	ids, err := counter.RecoverIDs(server.Disk().FS())
	if err != nil {
		return []Check{{Name: "recover", Detail: err.Error()}}, nil
	}
	stats := map[string]int64{"durable_records": int64(len(ids))}
	var acked []uint64
	for _, r := range c.results {
		acked = append(acked, r.Acked...)
		stats["sent"] += int64(r.Sent)
		stats["retries"] += int64(r.Retries)
	}
	stats["acked"] = int64(len(acked))
	stats["acked_after_heal"] = int64(len(acked) - c.ackedAtHeal)
	return []Check{
		checkAckedDurable(acked, ids),
		checkNoDoubleApply(ids),
		checkProgressAfterHeal(len(acked) - c.ackedAtHeal),
	}, stats
}

func checkAckedDurable(acked, durable []uint64) Check {
	have := make(map[uint64]bool, len(durable))
	for _, id := range durable {
		have[id] = true
	}
	var lost []uint64
	for _, id := range acked {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	check := Check{Name: "acknowledged-durable", OK: len(lost) == 0}
	check.Detail = fmt.Sprintf("%d of %d acknowledged increments survived the final power loss", len(acked)-len(lost), len(acked))
	if len(lost) > 0 {
		slices.Sort(lost)
		check.Detail += fmt.Sprintf("; lost e.g. %s", formatIDs(lost))
	}
	return check
}

func checkNoDoubleApply(durable []uint64) Check {
	seen := make(map[uint64]bool, len(durable))
	var dups []uint64
	for _, id := range durable {
		if seen[id] {
			dups = append(dups, id)
		}
		seen[id] = true
	}
	check := Check{Name: "no-double-apply", OK: len(dups) == 0}
	check.Detail = fmt.Sprintf("%d records, %d applied more than once", len(durable), len(dups))
	if len(dups) > 0 {
		slices.Sort(dups)
		check.Detail += fmt.Sprintf(", e.g. %s", formatIDs(dups))
	}
	return check
}

func checkProgressAfterHeal(n int) Check {
	return Check{Name: "progress-after-heal", OK: n > 0,
		Detail: fmt.Sprintf("%d increments acknowledged after the faults healed", n)}
}

// formatIDs shows up to five ids as client/sequence.
func formatIDs(ids []uint64) string {
	const shown = 5
	s := ""
	for i, id := range ids {
		if i == shown {
			s += fmt.Sprintf(" and %d more", len(ids)-shown)
			break
		}
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("c%d/%d", id>>32, id&0xffffffff)
	}
	return s
}
