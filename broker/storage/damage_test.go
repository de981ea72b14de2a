package storage

import (
	"errors"
	"testing"
)

// TestReadFencesFlipsTheCRCMisses: Kafka's batch CRC does not cover the
// base offset or the leader epoch, so a bit flipped there passes it. A
// read checks them against the segment and the epoch cache instead: the
// batch is recorded as damage (reported to OnDamage when found and when a
// later read is refused), never served,
// and FirstDamage names where a replica must cut to fetch it again.
func TestReadFencesFlipsTheCRCMisses(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   int64 // byte of the batch header to flip
	}{
		{"base offset, high byte", 0},
		{"base offset, low byte", 7},
		{"leader epoch", 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 26, testDiskConfig())
			l, _ := filled(t, r, Config{}, 10, 10)
			var heard []Damage
			l.OnDamage(func(d Damage) { heard = append(heard, d) })
			name, pos, _ := segmentPosition(t, l, 8)
			r.flipByte(name, pos+tc.at)
			res, err := l.Read(4, 1<<20, l.EndOffset())
			if err != nil || res.NextOffset != 8 {
				t.Fatalf("read from 4: next %d, %v: want the batches before the flip", res.NextOffset, err)
			}
			if _, err := l.Read(8, 1<<20, l.EndOffset()); !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("read at the flipped batch: %v, want %v", err, ErrCorruptLog)
			}
			d, ok := l.FirstDamage()
			if !ok || d.FirstOffset != 8 || d.LastOffset != 9 || len(heard) != 2 || heard[0] != d || heard[1] != d {
				t.Fatalf("damage %+v (found %v), heard %+v: want offsets 8..9, heard when found and when a read was refused", d, ok, heard)
			}
			if err := l.TruncateTo(d.FirstOffset); err != nil || l.EndOffset() != 8 {
				t.Fatalf("cut at the damage: end %d, %v", l.EndOffset(), err)
			}
			if _, ok := l.FirstDamage(); ok {
				t.Fatalf("damage left after the cut: %+v", l.Damage())
			}
		})
	}
}

// TestRecoveryBlamesTheBatchThatJumps: a flip in a flushed batch's base
// offset or leader epoch makes it jump ahead of its neighbours; recovery
// fences that batch, not the good one after it that falls back (nor every
// batch after it), so a replica cuts its log where the bad batch starts.
func TestRecoveryBlamesTheBatchThatJumps(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   int64
	}{
		{"base offset", 7},
		{"leader epoch", 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 27, testDiskConfig())
			l, _ := filled(t, r, Config{}, 10, 10)
			rp := l.RecoveryPoint()
			name, pos, size := segmentPosition(t, l, 8)
			l.Close()
			r.flipByte(name, pos+tc.at)
			l2, report := r.open(Config{}, rp)
			if len(report.Damage) != 1 || len(report.Truncations) != 0 {
				t.Fatalf("report: %s", report)
			}
			d := report.Damage[0]
			if d.Position != pos || d.EndPosition != pos+int64(size) || d.FirstOffset != 8 || d.LastOffset != 9 || l2.EndOffset() != 20 {
				t.Fatalf("damage %s, log end %d: want the batch of offsets 8..9 fenced, the log ending at 20", d, l2.EndOffset())
			}
		})
	}
}
