package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoDeleteRecords: franz-go's admin client deletes records on a
// real sluice broker (one partition to an offset inside a batch, one to
// the high watermark with -1); its ListStartOffsets and a consumer from
// the start see the new starts, an offset past the high watermark is
// OFFSET_OUT_OF_RANGE, and the starts hold across kill -9.
func TestFranzGoDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	b := startRealBroker(t, dir, "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "trim", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p, n := range []int{50, 30} {
		var records []*kgo.Record
		for i := range n {
			records = append(records, &kgo.Record{Topic: "trim", Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
		if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 20, LeaderEpoch: -1})
	offsets.Add(kadm.Offset{Topic: "trim", Partition: 1, At: -1, LeaderEpoch: -1})
	resps, err := adm.DeleteRecords(ctx, offsets)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 20, 1: 30} {
		r, ok := resps.Lookup("trim", p)
		if !ok || r.Err != nil || r.LowWatermark != want {
			t.Fatalf("delete records of trim-%d: %+v (found %v), want low watermark %d", p, r, ok, want)
		}
	}
	wantStarts(t, adm, map[int32]int64{0: 20, 1: 30})

	past := kadm.Offsets{}
	past.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 51, LeaderEpoch: -1})
	resps, err = adm.DeleteRecords(ctx, past)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resps.Lookup("trim", 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %+v, want OFFSET_OUT_OF_RANGE", r)
	}

	// A consumer from the start begins at the new starts.
	got := consumeAll(t, b.addr, "trim", 30)
	if len(got[1]) != 0 || len(got[0]) != 30 || got[0][0].offset != 20 || got[0][0].value != "p0-20" {
		t.Fatalf("consumed from the start: partition 0 %d records from %+v, partition 1 %d", len(got[0]), got[0][:min(1, len(got[0]))], len(got[1]))
	}

	b.kill()
	restarted := startRealBroker(t, dir, b.addr)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(restarted.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	wantStarts(t, kadm.NewClient(cl2), map[int32]int64{0: 20, 1: 30})
}

// wantStarts checks the topic trim's start offsets.
func wantStarts(t *testing.T, adm *kadm.Client, want map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		o, ok := starts.Lookup("trim", p)
		if !ok || o.Err != nil || o.Offset != w {
			t.Fatalf("start of trim-%d: %+v (found %v), want %d", p, o, ok, w)
		}
	}
}
