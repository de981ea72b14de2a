package storage

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestOffsetCheckpointRoundTrip(t *testing.T) {
	entries := []PartitionOffset{{"orders", 1, 500}, {"__consumer_offsets", 49, 12}, {"orders", 0, 1 << 40}}
	data, err := EncodeOffsetCheckpoint(entries)
	if err != nil {
		t.Fatal(err)
	}
	want := "0\n3\n__consumer_offsets 49 12\norders 0 1099511627776\norders 1 500\n"
	if string(data) != want {
		t.Fatalf("encoded %q, want %q", data, want)
	}
	got, err := DecodeOffsetCheckpoint(data)
	if err != nil || len(got) != 3 || got[0] != (PartitionOffset{"__consumer_offsets", 49, 12}) || got[2] != (PartitionOffset{"orders", 1, 500}) {
		t.Fatalf("decoded %v, %v", got, err)
	}
	for _, bad := range []string{"", "0\n", "1\n0\n", "0\n2\na 0 1\n", "0\n1\na 0\n", "0\n1\na x 1\n", "0\n1\na 0 1", "0\n1\na -1 1\n"} {
		if _, err := DecodeOffsetCheckpoint([]byte(bad)); err == nil {
			t.Fatalf("decoded %q", bad)
		}
	}
	if _, err := EncodeOffsetCheckpoint([]PartitionOffset{{"has space", 0, 1}}); err == nil {
		t.Fatal("encoded a topic with a space")
	}
	if _, err := EncodeOffsetCheckpoint([]PartitionOffset{{"a", 0, 1}, {"a", 0, 2}}); err == nil {
		t.Fatal("encoded a partition twice")
	}
}

func TestOffsetCheckpointRapid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		seen := map[PartitionOffset]bool{}
		var entries []PartitionOffset
		for i := 0; i < n; i++ {
			e := PartitionOffset{
				Topic:     rapid.StringMatching(`[a-zA-Z0-9._-]{1,20}`).Draw(t, "topic"),
				Partition: rapid.Int32Range(0, 1000).Draw(t, "partition"),
				Offset:    rapid.Int64().Draw(t, "offset"),
			}
			k := PartitionOffset{Topic: e.Topic, Partition: e.Partition}
			if seen[k] {
				continue
			}
			seen[k] = true
			entries = append(entries, e)
		}
		data, err := EncodeOffsetCheckpoint(entries)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeOffsetCheckpoint(data)
		if err != nil {
			t.Fatal(err)
		}
		sorted := slices.Clone(entries)
		slices.SortFunc(sorted, func(a, b PartitionOffset) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition) - int(b.Partition)
		})
		if !slices.Equal(got, sorted) && !(len(got) == 0 && len(sorted) == 0) {
			t.Fatalf("round trip %v -> %v", sorted, got)
		}
	})
}

// TestReplaceFileSurvivesPowerLoss: once done has run, the new content
// is durable; before, the old or the new one is there, whole.
func TestReplaceFileSurvivesPowerLoss(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		r := newRig(t, seed, testDiskConfig())
		name := RecoveryPointCheckpointName
		old, _ := EncodeOffsetCheckpoint([]PartitionOffset{{"t", 0, 1}})
		fresh, _ := EncodeOffsetCheckpoint([]PartitionOffset{{"t", 0, 2}, {"t", 1, 7}})
		var result error
		done := false
		ReplaceFile(r.fs, name, old, func(err error) { result, done = err, true })
		r.settle()
		if !done || result != nil {
			t.Fatalf("first write: %v %v", done, result)
		}
		done = false
		ReplaceFile(r.fs, name, fresh, func(err error) { result, done = err, true })
		if seed%2 == 0 {
			r.settle()
		} else {
			r.advance(time.Duration(seed*37%300) * time.Microsecond)
		}
		completed := done
		r.crash(true)
		got, err := ReadCheckpointFile(r.fs, name)
		if err != nil {
			t.Fatalf("seed %d: read after power loss: %v", seed, err)
		}
		if completed && string(got) != string(fresh) {
			t.Fatalf("seed %d: completed replace lost: %q", seed, got)
		}
		if string(got) != string(fresh) && string(got) != string(old) {
			t.Fatalf("seed %d: torn checkpoint %q", seed, got)
		}
	}
}

func TestEpochCache(t *testing.T) {
	var c epochCache
	if e, off := c.endOffsetFor(3, 100); e != UndefinedEpoch || off != UndefinedOffset {
		t.Fatalf("empty cache: %d %d", e, off)
	}
	c.assign(1, 0)
	c.assign(1, 5) // same epoch later: no change
	c.assign(3, 10)
	c.assign(5, 20)
	if !slices.Equal(c.entries, []EpochEntry{{1, 0}, {3, 10}, {5, 20}}) {
		t.Fatalf("entries %v", c.entries)
	}
	for _, tc := range []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{5, 5, 30},  // latest: the log end
		{3, 3, 20},  // start of the next epoch
		{4, 3, 20},  // unknown epoch between: largest below, next start
		{0, 0, 0},   // below the first: the first's start
		{1, 1, 10},  //
		{6, -1, -1}, // above the latest: undefined
		{-1, -1, -1},
	} {
		e, off := c.endOffsetFor(tc.epoch, 30)
		if e != tc.wantEpoch || off != tc.wantEnd {
			t.Fatalf("endOffsetFor(%d) = %d, %d; want %d, %d", tc.epoch, e, off, tc.wantEpoch, tc.wantEnd)
		}
	}
	// A new epoch at a lower offset drops the entries it contradicts.
	c.assign(6, 15)
	if !slices.Equal(c.entries, []EpochEntry{{1, 0}, {3, 10}, {6, 15}}) {
		t.Fatalf("after a contradicting assign: %v", c.entries)
	}
	c.truncateFromEnd(12)
	if !slices.Equal(c.entries, []EpochEntry{{1, 0}, {3, 10}}) {
		t.Fatalf("after truncateFromEnd(12): %v", c.entries)
	}
	c.truncateFromStart(11)
	if !slices.Equal(c.entries, []EpochEntry{{3, 11}}) {
		t.Fatalf("after truncateFromStart(11): %v", c.entries)
	}
	got, err := decodeEpochs(encodeEpochs([]EpochEntry{{1, 0}, {4, 9}}))
	if err != nil || !slices.Equal(got, []EpochEntry{{1, 0}, {4, 9}}) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"0\n2\n1 0\n1 5\n", "0\n2\n2 5\n3 4\n", "0\n1\n1\n", "0\n1\n-1 0\n"} {
		if _, err := decodeEpochs([]byte(bad)); err == nil {
			t.Fatalf("decoded %q", bad)
		}
	}
}
