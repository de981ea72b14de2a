package storage

import (
	"errors"
	"path"
	"testing"

	"github.com/sluice-sim/sluice/broker/record"
)

// FuzzRecovery: arbitrary bytes as a segment (and its index) never panic
// Open, and no batch whose CRC fails is ever served.
func FuzzRecovery(f *testing.F) {
	var valid []byte
	for i := 0; i < 6; i++ {
		bl := record.NewBuilder()
		bl.Compression = record.Compression(i % 5)
		b, err := bl.Build(testRecords(2, "seed", int64(i)))
		if err != nil {
			f.Fatal(err)
		}
		b.SetBaseOffset(int64(i * 2))
		valid = append(valid, b...)
	}
	flipped := append([]byte(nil), valid...)
	flipped[200] ^= 4
	f.Add(valid, []byte{}, uint8(0))
	f.Add(valid, []byte{}, uint8(1))
	f.Add(flipped, []byte{}, uint8(1))
	f.Add(flipped, []byte{}, uint8(0))
	f.Add(valid[:len(valid)-7], []byte{0, 0, 0, 3, 0, 0, 0, 100}, uint8(3))
	f.Add([]byte{}, []byte{1, 2, 3}, uint8(2))
	f.Fuzz(func(t *testing.T, logData, indexData []byte, mode uint8) {
		if len(logData) > 1<<20 || len(indexData) > 1<<16 {
			return
		}
		r := newRig(t, 1, testDiskConfig())
		if err := r.fs.MkdirAll(testDir); err != nil {
			t.Fatal(err)
		}
		write := func(name string, data []byte) {
			file, err := r.fs.Create(path.Join(testDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(data) > 0 {
				if _, err := file.WriteAt(data, 0); err != nil {
					t.Fatal(err)
				}
			}
			file.Close()
		}
		write(offsetName(0)+suffixLog, logData)
		// A second segment makes the first a closed one, whose index
		// files recovery may trust.
		write(offsetName(1<<20)+suffixLog, nil)
		if mode&2 != 0 {
			write(offsetName(0)+suffixIndex, indexData)
			write(offsetName(0)+suffixTimeIndex, indexData)
		}
		recoveryPoint := int64(0)
		if mode&1 != 0 {
			recoveryPoint = 1 << 30 // everything below it: damage is kept, not cut
		}
		cfg := Config{TrustFlushed: mode&4 != 0, IndexIntervalBytes: 64}
		l, _, err := Open(r.fs, r.clock, testDir, cfg, recoveryPoint, r.logf)
		if err != nil {
			if !errors.Is(err, ErrStorage) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		reads := 0
		for off := l.StartOffset(); off <= l.EndOffset() && reads < 3000; off++ {
			reads++
			res, err := l.Read(off, 1<<16, l.EndOffset())
			if err != nil {
				if !errors.Is(err, ErrCorruptLog) && !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("read at %d: %v", off, err)
				}
				continue
			}
			batches, err := record.Split(res.Data, 1<<16)
			if err != nil || len(batches) != res.Batches {
				t.Fatalf("read at %d: %d batches, split %d: %v", off, res.Batches, len(batches), err)
			}
			for _, b := range batches {
				if err := b.Verify(); err != nil {
					t.Fatalf("read at %d served %s: %v", off, b, err)
				}
			}
			if res.Batches > 0 && res.NextOffset > off+1 {
				off = res.NextOffset - 1
			}
		}
		l.OffsetForTime(0)
		r.settle() // appends wait for recovery's cuts to be durable
		if _, err := l.Append(testBatch(t, testRecords(1, "after", 1)), l.LatestEpoch()+1); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if err := l.TruncateTo(l.StartOffset() + 1); err != nil {
			t.Fatalf("truncate after recovery: %v", err)
		}
	})
}
