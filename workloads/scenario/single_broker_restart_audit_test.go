package scenario

import (
	"strings"
	"testing"

	"github.com/sluice-sim/sluice/broker/storage"
)

// liveImage is a partition a live broker held: two epochs, two producers.
func liveImage() partitionImage {
	return partitionImage{start: 10, end: 100, highWatermark: 100,
		epochs: []storage.EpochEntry{{Epoch: 0, StartOffset: 0}, {Epoch: 2, StartOffset: 40}},
		producers: map[int64]producerImage{
			7: {epoch: 0, lastSequence: 41, lastOffset: 98},
			9: {epoch: 1, lastSequence: 3, lastOffset: 60},
		}}
}

// TestRestartAuditAcceptsTheRestartedEpoch: a broker restarted leads at a
// new epoch from the log end on, which the audit does not count against
// it; an image rebuilt alike passes.
func TestRestartAuditAcceptsTheRestartedEpoch(t *testing.T) {
	rebuilt := liveImage()
	rebuilt.epochs = append(rebuilt.epochs, storage.EpochEntry{Epoch: 3, StartOffset: 100})
	if faults := compareImages(liveImage(), rebuilt); len(faults) > 0 {
		t.Fatalf("an image rebuilt alike: %v", faults)
	}
}

// TestRestartAuditFlagsWhatRecoveryLost: each way a rebuilt image can
// differ from the live one is named, with the producer concerned.
func TestRestartAuditFlagsWhatRecoveryLost(t *testing.T) {
	cases := []struct {
		name   string
		change func(*partitionImage)
		want   string
	}{
		{"producer forgotten", func(p *partitionImage) { delete(p.producers, 9) }, "producer 9 (epoch 1, sequence ..3 at 60) forgotten"},
		{"older sequence", func(p *partitionImage) { p.producers[7] = producerImage{epoch: 0, lastSequence: 36, lastOffset: 93} },
			"producer 7 at epoch 0, sequence ..36 at 93; the live broker's epoch 0, sequence ..41 at 98"},
		{"producer made up", func(p *partitionImage) { p.producers[11] = producerImage{lastOffset: 50} }, "producer 11"},
		{"epoch lost", func(p *partitionImage) { p.epochs = p.epochs[:1] }, "leader epochs"},
		{"log start moved", func(p *partitionImage) { p.start = 0 }, "log 0..100, the live broker's 10..100"},
		{"high watermark", func(p *partitionImage) { p.highWatermark = 90 }, "high watermark 90, the live broker's 100"},
	}
	for _, tc := range cases {
		rebuilt := liveImage()
		tc.change(&rebuilt)
		faults := compareImages(liveImage(), rebuilt)
		if len(faults) != 1 || !strings.Contains(faults[0], tc.want) {
			t.Errorf("%s: faults %q, want one naming %q", tc.name, faults, tc.want)
		}
	}
}
