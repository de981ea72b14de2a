package broker

import (
	"testing"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/simdisk"
)

// A start after a fatal error reads the log-start checkpoint afresh, but a
// replacement of it from before the error may still be syncing: the start
// keeps its writing flag and its waiters, so that its own replacements
// queue behind it rather than write the same temporary file beside it.
func TestLoadLogStartsKeepsARunningReplacement(t *testing.T) {
	loop := sched.New()
	node := loop.AddNode("broker")
	node.Boot()
	disk := simdisk.New(loop, node, sched.NewRand(1, "disk", 0), simdisk.Config{SectorBytes: 512})
	b := &Broker{env: sim.Env{FS: disk.FS()}, cfg: Config{DataDir: "kafka-logs"}}
	b.logStarts.writing = true
	b.logStarts.waiting = []func(error){func(error) {}}
	b.logStarts.written = []byte("what the running replacement replaced")

	b.loadLogStarts()
	if !b.logStarts.writing {
		t.Fatal("the running replacement's flag was cleared: a second one could start beside it")
	}
	if len(b.logStarts.waiting) != 1 {
		t.Fatalf("%d waiters kept, want the 1 the running replacement answers", len(b.logStarts.waiting))
	}
	if b.logStarts.written != nil || b.logStarts.restored == nil {
		t.Fatalf("the checkpoint was not read afresh: written %q, restored %v", b.logStarts.written, b.logStarts.restored)
	}
}
