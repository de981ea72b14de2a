package controller

import (
	"errors"
	"fmt"
	"path"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// diskRig is one simulated node's disk, driven from the test.
type diskRig struct {
	t  *testing.T
	w  *world.World
	fs sim.FS
}

func newDiskRig(t *testing.T) *diskRig { return newDiskRigSeeded(t, 1) }

func newDiskRigSeeded(t *testing.T, seed uint64) *diskRig {
	r := &diskRig{t: t, w: world.New(world.Config{Seed: seed})}
	r.w.AddNode("n", func(env sim.Env) { r.fs = env.FS })
	r.w.Run(time.Millisecond, 0)
	return r
}

var testBootstrap = pb.Snapshot{Metadata: pb.SnapshotMetadata{Index: 1, Term: 1, ConfState: pb.ConfState{Voters: []uint64{1}}}}

func (r *diskRig) open() *raftStore {
	r.t.Helper()
	s, err := openStore(r.fs, "controller", testBootstrap)
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

// write appends entries lo..hi and a hard state, and syncs.
func (r *diskRig) write(s *raftStore, lo, hi uint64) {
	r.t.Helper()
	var entries []pb.Entry
	for i := lo; i <= hi; i++ {
		entries = append(entries, pb.Entry{Index: i, Term: 2, Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if err := s.appendFrames(entries, pb.HardState{Term: 2, Vote: 1, Commit: hi}); err != nil {
		r.t.Fatal(err)
	}
	var synced error = errors.New("sync did not complete")
	s.sync(func(err error) { synced = err })
	r.w.Run(r.w.Now()+time.Second, 0)
	if synced != nil {
		r.t.Fatal(synced)
	}
}

func (r *diskRig) segment() string {
	names, err := r.fs.List("controller")
	if err != nil {
		r.t.Fatal(err)
	}
	for _, n := range names {
		if len(n) > len(segmentPrefix) && n[:len(segmentPrefix)] == segmentPrefix {
			return path.Join("controller", n)
		}
	}
	r.t.Fatal("no segment")
	return ""
}

func lastIndex(s *raftStore) uint64 { i, _ := s.LastIndex(); return i }

func TestStoreReplaysWhatItWrote(t *testing.T) {
	r := newDiskRig(t)
	s := r.open()
	r.write(s, 2, 10)
	r.write(s, 8, 12) // a new leader's entries overwrite 8..10
	s.close()
	back := r.open()
	hs, _, _ := back.InitialState()
	if lastIndex(back) != 12 || hs.Commit != 12 || hs.Vote != 1 || back.recovery.TornBytes != 0 {
		t.Fatalf("replayed last %d, hard state %+v, recovery %+v", lastIndex(back), hs, back.recovery)
	}
	ents, err := back.Entries(2, 13, 1<<20)
	if err != nil || len(ents) != 11 || string(ents[10].Data) != "entry 12" {
		t.Fatalf("entries %v, %v", ents, err)
	}
}

func TestStoreCutsTornTail(t *testing.T) {
	r := newDiskRig(t)
	s := r.open()
	r.write(s, 2, 5)
	r.write(s, 6, 9)
	s.close()
	name := r.segment()
	f, _ := r.fs.Open(name)
	size, _ := f.Size()
	f.Truncate(size - 7) // the last frame is cut short
	f.Close()
	back := r.open()
	if back.recovery.TornBytes == 0 || back.recovery.CorruptFrames != 0 {
		t.Fatalf("recovery %+v, want a torn tail and no corruption", back.recovery)
	}
	if lastIndex(back) != 9 {
		// Only the hard state frame was cut; every entry survives.
		t.Fatalf("last index %d after cutting the final hard state", lastIndex(back))
	}
	// Appending after the cut replays cleanly.
	r.write(back, 10, 11)
	back.close()
	again := r.open()
	if lastIndex(again) != 11 || again.recovery.TornBytes != 0 {
		t.Fatalf("after appending past the cut: last %d, recovery %+v", lastIndex(again), again.recovery)
	}
}

func TestStoreReportsCorruption(t *testing.T) {
	r := newDiskRig(t)
	s := r.open()
	r.write(s, 2, 4)
	r.write(s, 5, 9)
	s.close()
	name := r.segment()
	f, _ := r.fs.Open(name)
	// Flip a byte inside the first frame's payload.
	b := make([]byte, 1)
	f.ReadAt(b, frameHeaderSize+3)
	b[0] ^= 0x40
	f.WriteAt(b, frameHeaderSize+3)
	f.Close()
	back := r.open()
	if back.recovery.CorruptFrames != 1 || lastIndex(back) != 1 {
		t.Fatalf("recovery %+v, last %d: want the damage reported and the log cut before it", back.recovery, lastIndex(back))
	}
}

func TestStoreRefusesCorruptSnapshot(t *testing.T) {
	r := newDiskRig(t)
	s := r.open()
	r.write(s, 2, 20)
	var done error = errors.New("snapshot did not complete")
	s.createSnapshot(15, pb.ConfState{Voters: []uint64{1}}, []byte(`{"offset":15}`), func(err error) { done = err })
	r.w.Run(r.w.Now()+time.Second, 0)
	if done != nil {
		t.Fatal(done)
	}
	s.close()
	back := r.open()
	if back.recovery.SnapshotIndex != 15 || lastIndex(back) != 20 || back.recovery.Segments != 1 {
		t.Fatalf("after a snapshot: recovery %+v, last %d", back.recovery, lastIndex(back))
	}
	back.close()
	f, _ := r.fs.Open("controller/" + snapshotName)
	size, _ := f.Size()
	f.WriteAt([]byte{'#'}, size-2)
	f.Close()
	if _, err := openStore(r.fs, "controller", testBootstrap); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a corrupt snapshot opened with %v", err)
	}
}

// TestStoreReadErrorIsNotATornTail: a read that fails while the log is
// recovered fails the open, and leaves the log whole for the next try;
// cutting the log there would lose acknowledged entries.
func TestStoreReadErrorIsNotATornTail(t *testing.T) {
	r := newDiskRig(t)
	s := r.open()
	r.write(s, 2, 40)
	s.close()
	disk := r.w.Node("n").Disk()
	disk.SetReadErrorRate(1)
	if _, err := openStore(r.fs, "controller", testBootstrap); err == nil {
		t.Fatal("open with every read failing succeeded")
	}
	disk.SetReadErrorRate(0)
	s = r.open()
	defer s.close()
	if got := lastIndex(s); got != 40 {
		t.Fatalf("after a failed read the log ends at %d, want 40", got)
	}
	if rec := s.recovery; rec.TornBytes != 0 || rec.CorruptFrames != 0 {
		t.Fatalf("recovery after the read errors: %+v", rec)
	}
}

// TestStoreSyncsWhatItRecovered: a process killed before its first sync
// leaves its log in the page cache; the next process reads it back and
// must sync it, file and names, before it counts as durable, or a power
// loss takes the whole directory.
// A power loss keeps a random prefix of the uncommitted journal, so the
// seeds vary what it keeps.
func TestStoreSyncsWhatItRecovered(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		storeSyncsWhatItRecovered(t, seed)
	}
}

func storeSyncsWhatItRecovered(t *testing.T, seed uint64) {
	r := newDiskRigSeeded(t, seed)
	s := r.open()
	var entries []pb.Entry
	for i := uint64(2); i <= 10; i++ {
		entries = append(entries, pb.Entry{Index: i, Term: 2, Data: fmt.Appendf(nil, "entry %d", i)})
	}
	if err := s.appendFrames(entries, pb.HardState{Term: 2, Vote: 1, Commit: 10}); err != nil {
		t.Fatal(err)
	}
	r.w.Kill("n") // before any sync
	r.w.Restart("n")
	s = r.open()
	if got := lastIndex(s); got != 10 || !s.mustSync() {
		t.Fatalf("seed %d: after the kill: last index %d, must sync %v; want 10 and true", seed, got, s.mustSync())
	}
	var synced error = errors.New("sync did not complete")
	s.sync(func(err error) { synced = err })
	r.w.Run(r.w.Now()+time.Second, 0)
	if synced != nil || s.mustSync() {
		t.Fatalf("seed %d: sync: %v, must sync after it: %v", seed, synced, s.mustSync())
	}
	r.w.PowerLoss("n")
	r.w.Restart("n")
	s = r.open()
	defer s.close()
	if got := lastIndex(s); got != 10 {
		t.Fatalf("seed %d: after the sync and a power loss the log ends at %d, want 10", seed, got)
	}
}
