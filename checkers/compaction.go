package checkers

import "github.com/sluice-sim/sluice/checkers/history"

// Compaction keeps the newest record of each key and may remove any older
// one, so on a compacted partition a record missing from what consumers
// read is not lost, nor a gap over it a skip, when the history vouches
// for a newer record of its key (an acknowledged send or a polled record
// at a higher offset). What compaction may never do stays checked: remove
// the newest record of a key, reorder, or invent.
//
// The newer record is looked for over the whole history, not only over
// what was in the log when a read happened: a cleaner can remove a record
// only once a newer one of its key is in the log, so this excuses a little
// more than it must, never less.

// keyedOffset is a key's place in one partition.
type keyedOffset struct {
	tp, key int32
}

// supersededValues marks, by value id, the records of compacted
// partitions that have a newer record of their key; nil when no partition
// is compacted. A value seen at several offsets (itself an anomaly) counts
// at its lowest.
func supersededValues(ix *indexed, compacted map[history.TopicPartition]bool) []bool {
	if len(compacted) == 0 {
		return nil
	}
	isCompacted := make([]bool, len(ix.tps))
	someCompacted := false
	for i, tp := range ix.tps {
		isCompacted[i] = compacted[tp]
		someCompacted = someCompacted || isCompacted[i]
	}
	if !someCompacted {
		return nil
	}
	lowest := make([]int64, len(ix.values))
	for i := range lowest {
		lowest[i] = -1
	}
	newest := map[keyedOffset]int64{}
	note := func(tp, value int32, offset int64) {
		key := ix.keyOf[value]
		if !isCompacted[tp] || key < 0 {
			return
		}
		if lowest[value] < 0 || offset < lowest[value] {
			lowest[value] = offset
		}
		k := keyedOffset{tp: tp, key: key}
		if n, ok := newest[k]; !ok || offset > n {
			newest[k] = offset
		}
	}
	for i := range ix.sends {
		if s := &ix.sends[i]; s.outcome == outcomeOK {
			note(s.tp, s.value, s.offset)
		}
	}
	for i := range ix.polls {
		for _, r := range ix.polls[i].records {
			note(r.tp, r.value, r.offset)
		}
	}
	superseded := make([]bool, len(ix.values))
	for v, at := range lowest {
		if at < 0 {
			continue
		}
		si := ix.sendOf[v]
		k := keyedOffset{tp: ix.sends[si].tp, key: ix.keyOf[v]}
		superseded[v] = newest[k] > at
	}
	return superseded
}

// removableRanks counts, for a version order, the ranks a cleaner may not
// remove below each rank: kept[i] is how many of ranks 0..i-1 hold a
// record that is not superseded. An offset holding several values is kept
// unless all are superseded.
func removableRanks(pairs []observation, offsets []int64, superseded []bool) []int32 {
	kept := make([]int32, len(offsets)+1)
	rank := 0
	for lo := 0; lo < len(pairs); {
		hi := lo + 1
		for hi < len(pairs) && pairs[hi].offset == pairs[lo].offset {
			hi++
		}
		removable := true
		for _, o := range pairs[lo:hi] {
			removable = removable && superseded[o.value]
		}
		kept[rank+1] = kept[rank]
		if !removable {
			kept[rank+1]++
		}
		rank++
		lo = hi
	}
	return kept
}

// compactedAway reports whether every rank strictly between lo and hi
// holds only superseded records: a gap compaction explains.
func (vo *versionOrder) compactedAway(lo, hi int) bool {
	return vo.kept != nil && vo.kept[hi]-vo.kept[lo+1] == 0
}
