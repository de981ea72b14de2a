package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/record"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// The benchmarks run on a real directory through sim/osenv: appends of
// 100-byte records in 16 KiB and 1 MiB batches, made durable with group
// commit, against a raw baseline of the same bytes written and fsynced
// with a plain os.File. Run with:
//
//	go test ./broker/storage -run XXX -bench . -benchtime 3s
//
// (TMPDIR chooses the disk.)

const benchRecordBytes = 100

func benchBatch(b *testing.B, batchBytes int) (record.Batch, int) {
	b.Helper()
	n := batchBytes / (benchRecordBytes + 8)
	recs := make([]record.Record, n)
	value := bytes.Repeat([]byte("x"), benchRecordBytes)
	for i := range recs {
		recs[i] = record.Record{Offset: int64(i), Timestamp: 1, Value: value}
	}
	batch, err := record.NewBuilder().Build(recs)
	if err != nil {
		b.Fatal(err)
	}
	return batch, n
}

// benchNode starts a real node on a temporary directory.
func benchNode(b *testing.B) (*osenv.Node, func()) {
	b.Helper()
	n, err := osenv.NewNode(osenv.Options{Name: "bench", DataDir: b.TempDir(), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx); close(stopped) }()
	return n, func() { cancel(); <-stopped }
}

func BenchmarkAppendFlush(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		for _, inflight := range []int{1, 8} {
			name := fmt.Sprintf("batch=%dKiB/inflight=%d", size>>10, inflight)
			b.Run(name, func(b *testing.B) { benchAppendFlush(b, size, inflight) })
		}
	}
}

// benchAppendFlush appends batches and flushes after each, with up to
// inflight appends waiting for their flush at once (inflight 1 is a
// producer waiting for each acknowledgement; more lets group commit share
// one fsync among several appends).
func benchAppendFlush(b *testing.B, batchBytes, inflight int) {
	batch, records := benchBatch(b, batchBytes)
	n, stop := benchNode(b)
	defer stop()
	env := n.Env()
	var l *Log
	var openErr error
	n.Call(func() {
		cfg := Config{MaxBatchBytes: 2 << 20, Flush: FlushPolicy{Mode: FlushGroupCommit}}
		l, _, openErr = Open(env.FS, env.Clock, "bench-0", cfg, 0, nil)
	})
	if openErr != nil {
		b.Fatal(openErr)
	}
	slots := make(chan struct{}, inflight)
	errs := make(chan error, 1)
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		slots <- struct{}{}
		n.Post(func() {
			if _, err := l.Append(batch, 0); err != nil {
				select {
				case errs <- err:
				default:
				}
				<-slots
				return
			}
			l.Flush(func(err error) {
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
				<-slots
			})
		})
	}
	for i := 0; i < inflight; i++ {
		slots <- struct{}{}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
	n.Call(func() { l.Close() })
}

// BenchmarkRawWriteSync is the baseline: the same bytes written with a
// plain file and fsynced after each batch.
func BenchmarkRawWriteSync(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("batch=%dKiB", size>>10), func(b *testing.B) {
			batch, records := benchBatch(b, size)
			f, err := os.Create(filepath.Join(b.TempDir(), "raw.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := f.Write(batch); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// BenchmarkSeamWriteSync writes and syncs the same bytes through the
// osenv seam without the log: the cost of the loop and the sync workers'
// goroutine hand-offs, which the log pays too.
func BenchmarkSeamWriteSync(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("batch=%dKiB", size>>10), func(b *testing.B) {
			batch, records := benchBatch(b, size)
			n, stop := benchNode(b)
			defer stop()
			env := n.Env()
			var f interface {
				Append([]byte) (int, error)
				Sync(func(error))
			}
			n.Call(func() {
				file, err := env.FS.Create("seam.log")
				if err != nil {
					b.Error(err)
				}
				f = file
			})
			done := make(chan error, 1)
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				n.Post(func() {
					if _, err := f.Append(batch); err != nil {
						done <- err
						return
					}
					f.Sync(func(err error) { done <- err })
				})
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(records*b.N)/elapsed.Seconds(), "records/s")
		})
	}
}
