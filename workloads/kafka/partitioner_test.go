package kafka

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMurmur2KafkaVectors are the cases of Kafka's own
// UtilsTest.testMurmur2 (clients/src/test/java/org/apache/kafka/common/utils).
func TestMurmur2KafkaVectors(t *testing.T) {
	cases := []struct {
		in   []byte
		want int32
	}{
		{[]byte("21"), -973932308},
		{[]byte("foobar"), -790332482},
		{[]byte("a-little-bit-long-string"), -985981536},
		{[]byte("a-little-bit-longer-string"), -1486304829},
		{[]byte("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971},
		{[]byte{'a', 'b', 'c'}, 479470107},
	}
	for _, c := range cases {
		if got := Murmur2(c.in); got != c.want {
			t.Errorf("murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestKeyPartitionMatchesFranzGo compares with franz-go's Kafka-compatible
// key partitioner (kgo.StickyKeyPartitioner with its default murmur2
// hasher) over many keys and partition counts.
func TestKeyPartitionMatchesFranzGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	part := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int{1, 2, 3, 7, 12, 64, 1000} {
		for i := range 2000 {
			key := make([]byte, rng.IntN(40))
			for j := range key {
				key[j] = byte(rng.Uint32())
			}
			if i%3 == 0 {
				key = fmt.Appendf(nil, "key-%d", i)
			}
			want := int32(part.Partition(&kgo.Record{Key: key}, n))
			if got := KeyPartition(key, n); got != want {
				t.Fatalf("key %x over %d partitions: %d, franz-go says %d", key, n, got, want)
			}
		}
	}
}

// TestKeyPartitionSignBit checks toPositive clears the sign bit rather than
// taking an absolute value: murmur2("21") = -973932308 clears to 1173551340,
// partition 0 of 10, where the absolute value would give 8.
func TestKeyPartitionSignBit(t *testing.T) {
	if got := KeyPartition([]byte("21"), 10); got != 0 {
		t.Fatalf("got %d want 0", got)
	}
	if got := KeyPartition([]byte("21"), 7); got != 1173551340%7 {
		t.Fatalf("got %d want %d", got, 1173551340%7)
	}
}

func TestStickyPartitionerSticksThenMoves(t *testing.T) {
	s := newStickyPartitioner(rand.New(rand.NewPCG(3, 4)))
	available := []int32{0, 1, 2, 3}
	first := s.partition("t", 4, available)
	b := &batch{}
	s.filled("t", first, b)
	for range 10 {
		if p := s.partition("t", 4, available); p != first {
			t.Fatalf("moved from %d to %d while the batch was open", first, p)
		}
	}
	seen := map[int32]bool{}
	prev := first
	for range 200 {
		b.sealed = true
		p := s.partition("t", 4, available)
		if p == prev {
			t.Fatalf("stayed on %d after the batch closed", p)
		}
		seen[p] = true
		b = &batch{}
		s.filled("t", p, b)
		prev = p
	}
	if len(seen) != 4 {
		t.Fatalf("only partitions %v drawn", seen)
	}
	// Only partitions with a leader are drawn when some have one.
	b.sealed = true
	for range 20 {
		if p := s.partition("t", 4, []int32{2}); p != 2 {
			t.Fatalf("drew %d, only 2 is available", p)
		}
	}
	// Topics are independent.
	if p := s.partition("u", 1, nil); p != 0 {
		t.Fatalf("single-partition topic gave %d", p)
	}
}
