package checkers

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/sluice-sim/sluice/checkers/history"
)

// skippedShownMax bounds the skipped offsets an example lists.
const skippedShownMax = 8

// CheckKafka looks for Jepsen's Kafka anomalies (jepsen.tests.kafka) in h.
//
// It first builds each partition's version order: every (offset, value)
// pair that an acknowledged send or an ok poll vouched for. Offsets are then
// compared by their rank in that order, so gaps nobody observed (transaction
// markers, compacted records, sends never acknowledged nor read) are not
// skips; a skip is a jump over an offset known to hold a record.
//
// Choices where the history format differs from Jepsen's:
//   - A send carries one record, so int-nonmonotonic-send (two sends inside
//     one operation) cannot happen and is not checked.
//   - An assign resets what a consumer's next poll may start at for every
//     partition, as the history format says; Jepsen keeps the partitions the
//     new assignment still holds.
//   - A poll that completes info resets it too: the client may have consumed
//     records it never reported. Jepsen keeps it, but there an info poll
//     ends the process.
//   - lost-write and unseen are disjoint: an unread acknowledged send at or
//     below the highest offset polled on its partition is a lost write, one
//     above it is unseen.
//   - An acknowledged send that polls did read, but that the last poll of
//     its offset found replaced by another value and no poll read again
//     (anywhere) after that, is a lost write too: the log dropped it after
//     a consumer saw it, as when a leader cut off from its followers
//     acknowledges and serves writes alone and an unclean election
//     truncates them. Jepsen reads such a history as inconsistent offsets
//     only when the read of the lost value survives; the write is lost all
//     the same, so it is reported as both.
//   - phantom-value (a polled value that no send carried to that partition)
//     is an anomaly; Jepsen stops with an error.
//   - nonmonotonic-send compares one process's sends to a partition in the
//     order Options.SendOrder names (invoke order by default), since here a
//     producer may have several sends in flight; an info or pending send
//     counts at the offset a poll read it at, as in Jepsen's version order.
func CheckKafka(h history.History, opts Options) Verdict {
	opts = opts.withDefaults()
	return checkKafka(indexHistory(h), opts)
}

func checkKafka(ix *indexed, opts Options) Verdict {
	f := newFindings(opts.ExamplesMax)
	stats := map[string]int64{}
	superseded := supersededValues(ix, opts.Compacted)
	orders := buildVersionOrders(ix, superseded, f)
	reads := checkReads(ix, orders, f)
	unseen, deleted, compacted := checkUnread(ix, orders, reads, opts.LogStartOffsets, superseded, f)
	checkConsumers(ix, orders, f)
	checkSendOrder(ix, opts.SendOrder, reads, f)

	var offsets int64
	for _, vo := range orders {
		offsets += int64(len(vo.offsets))
	}
	stats["version-order-offsets"] = offsets
	stats["values-polled"] = reads.valuesPolled
	stats["unseen"] = int64(unseen)
	stats["deleted-unread"] = int64(deleted)
	stats["compacted-unread"] = int64(compacted)
	stats["lost-write"] = int64(f.count(KindLostWrite))
	notes := []string{}
	var excluded []string
	if !opts.UnseenIsAnomaly {
		excluded = append(excluded, KindUnseen)
		if unseen > 0 {
			notes = append(notes, fmt.Sprintf(
				"%d acknowledged sends were never polled (unseen); not counted as an anomaly", unseen))
		}
	}
	if len(ix.malformed) > 0 {
		notes = append(notes, fmt.Sprintf(
			"%d malformed ops were skipped; see the well-formed verdict", len(ix.malformed)))
	}
	anomalies := f.anomalies(excluded...)
	return Verdict{
		Checker:   CheckerKafka,
		Valid:     len(anomalies) == 0,
		Anomalies: anomalies,
		Stats:     stats,
		Notes:     notes,
	}
}

// versionOrder is a partition's observed offsets, sorted and distinct. The
// rank of an offset in it is its "index" in Jepsen's terms.
type versionOrder struct {
	offsets []int64
	// kept counts the ranks compaction may not remove (removableRanks);
	// nil on a partition that is not compacted.
	kept []int32
}

// rank is the position of an observed offset in the version order.
// Offsets are distinct and sorted, and a log's are mostly dense: where no
// gap comes before offset, its rank is its distance from the first.
func (vo *versionOrder) rank(offset int64) int {
	if len(vo.offsets) > 0 {
		if i := offset - vo.offsets[0]; i >= 0 && i < int64(len(vo.offsets)) && vo.offsets[i] == offset {
			return int(i)
		}
	}
	i, found := slices.BinarySearch(vo.offsets, offset)
	if !found {
		panic(fmt.Sprintf("checkers: offset %d is not in the version order", offset))
	}
	return i
}

// skipped describes the offsets strictly between ranks lo and hi.
func (vo *versionOrder) skipped(lo, hi int) string {
	n := hi - lo - 1
	shown := vo.offsets[lo+1 : lo+1+min(n, skippedShownMax)]
	if n > skippedShownMax {
		return fmt.Sprintf("%d offsets %v and %d more", n, shown, n-skippedShownMax)
	}
	return fmt.Sprintf("%d offsets %v", n, shown)
}

// observation is one (offset, value) pair vouched for by the op at pos.
type observation struct {
	offset int64
	value  int32
	pos    int
}

func compareObservations(a, b observation) int {
	if c := cmp.Compare(a.offset, b.offset); c != 0 {
		return c
	}
	if c := cmp.Compare(a.value, b.value); c != 0 {
		return c
	}
	return cmp.Compare(a.pos, b.pos)
}

// buildVersionOrders builds every partition's version order from ok sends
// and ok polls, reporting offsets with two values (inconsistent-offsets)
// and values at two offsets (duplicate).
func buildVersionOrders(ix *indexed, superseded []bool, f *findings) []versionOrder {
	obs := make([][]observation, len(ix.tps))
	counts := make([]int, len(ix.tps))
	for i := range ix.sends {
		if s := &ix.sends[i]; s.outcome == outcomeOK {
			counts[s.tp]++
		}
	}
	for i := range ix.polls {
		for _, r := range ix.polls[i].records {
			counts[r.tp]++
		}
	}
	for tp, n := range counts {
		obs[tp] = make([]observation, 0, n)
	}
	for i := range ix.sends {
		s := &ix.sends[i]
		if s.outcome == outcomeOK {
			obs[s.tp] = append(obs[s.tp], observation{s.offset, s.value, s.donePos})
		}
	}
	for i := range ix.polls {
		p := &ix.polls[i]
		for _, r := range p.records {
			obs[r.tp] = append(obs[r.tp], observation{r.offset, r.value, p.donePos})
		}
	}
	orders := make([]versionOrder, len(ix.tps))
	for tp := range obs {
		pairs := distinctPairs(obs[tp])
		obs[tp] = nil
		orders[tp] = versionOrder{offsets: reportInconsistentOffsets(ix, int32(tp), pairs, f)}
		if superseded != nil {
			orders[tp].kept = removableRanks(pairs, orders[tp].offsets, superseded)
		}
		reportDuplicates(ix, int32(tp), pairs, f)
	}
	return orders
}

// distinctPairs sorts observations and keeps the first of each (offset,
// value) pair, which is the earliest op that vouched for it.
func distinctPairs(obs []observation) []observation {
	sortObservations(obs)
	out := obs[:0]
	for _, o := range obs {
		if n := len(out); n > 0 && out[n-1].offset == o.offset && out[n-1].value == o.value {
			continue
		}
		out = append(out, o)
	}
	return out
}

// sortObservations sorts obs by compareObservations. A partition's
// offsets are dense, each seen a few times (its send and each consumer's
// reads), so it places them by offset in one counting pass and sorts only
// each offset's few observations; sparse offsets are sorted as they are.
func sortObservations(obs []observation) {
	const denseMin, spanPerObservationMax = 64, 4
	if len(obs) < denseMin {
		slices.SortFunc(obs, compareObservations)
		return
	}
	lo, hi := obs[0].offset, obs[0].offset
	for _, o := range obs {
		lo, hi = min(lo, o.offset), max(hi, o.offset)
	}
	if hi-lo >= int64(spanPerObservationMax*len(obs)) {
		slices.SortFunc(obs, compareObservations)
		return
	}
	starts := make([]int, hi-lo+2)
	for _, o := range obs {
		starts[o.offset-lo+1]++
	}
	for i := 1; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	placed := make([]observation, len(obs))
	next := slices.Clone(starts[:len(starts)-1])
	for _, o := range obs {
		placed[next[o.offset-lo]] = o
		next[o.offset-lo]++
	}
	copy(obs, placed)
	for i := 0; i+1 < len(starts); i++ {
		if starts[i+1]-starts[i] > 1 {
			slices.SortFunc(obs[starts[i]:starts[i+1]], compareObservations)
		}
	}
}

// reportInconsistentOffsets reports offsets holding several values and
// returns the distinct offsets. pairs are sorted by offset.
func reportInconsistentOffsets(ix *indexed, tp int32, pairs []observation, f *findings) []int64 {
	offsets := make([]int64, 0, len(pairs))
	for lo := 0; lo < len(pairs); {
		hi := lo + 1
		for hi < len(pairs) && pairs[hi].offset == pairs[lo].offset {
			hi++
		}
		offsets = append(offsets, pairs[lo].offset)
		if hi-lo > 1 {
			group := pairs[lo:hi]
			values := make([]string, len(group))
			ops := make([]int, len(group))
			for i, o := range group {
				values[i] = ix.values[o.value]
				ops[i] = ix.opIndex(o.pos)
			}
			slices.Sort(values)
			slices.Sort(ops)
			f.add(KindInconsistentOffsets, Example{
				Partition: ix.tpName(tp), Offset: pairs[lo].offset, Values: values, Ops: ops,
				Detail: fmt.Sprintf("offset %d of %s holds %d values %q",
					pairs[lo].offset, ix.tpName(tp), len(values), values),
			})
		}
		lo = hi
	}
	return offsets
}

// reportDuplicates reports values found at several offsets.
func reportDuplicates(ix *indexed, tp int32, pairs []observation, f *findings) {
	byValue := slices.Clone(pairs)
	slices.SortFunc(byValue, func(a, b observation) int {
		if c := cmp.Compare(a.value, b.value); c != 0 {
			return c
		}
		return cmp.Compare(a.offset, b.offset)
	})
	for lo := 0; lo < len(byValue); {
		hi := lo + 1
		for hi < len(byValue) && byValue[hi].value == byValue[lo].value {
			hi++
		}
		if hi-lo > 1 {
			group := byValue[lo:hi]
			offsets := make([]int64, len(group))
			ops := make([]int, len(group))
			for i, o := range group {
				offsets[i] = o.offset
				ops[i] = ix.opIndex(o.pos)
			}
			slices.Sort(ops)
			value := ix.values[group[0].value]
			f.add(KindDuplicate, Example{
				Partition: ix.tpName(tp), Offset: offsets[0], Values: []string{value}, Ops: ops,
				Detail: fmt.Sprintf("value %q is at %d offsets %v of %s",
					value, len(offsets), offsets, ix.tpName(tp)),
			})
		}
		lo = hi
	}
}

// readSummary is what ok polls returned, by value and by partition.
type readSummary struct {
	// polledOffset is, per value id, the lowest offset at which a poll
	// returned it on the partition it was sent to; -1 if never.
	polledOffset []int64
	// maxOffset and maxPos are, per partition, the highest offset any poll
	// returned and the poll that returned it; maxOffset is -1 if none.
	maxOffset    []int64
	maxPos       []int
	valuesPolled int64
	// lastReadPos is, per value id, the position of the last poll that
	// returned it on the partition it was sent to; -1 if none.
	lastReadPos []int
	// lastAt is, per partition and rank in its version order, the last
	// poll to return that offset and the value it found there.
	lastAt [][]lastObservation
}

// lastObservation is the value the last poll of an offset returned.
type lastObservation struct {
	value int32
	pos   int
}

// checkReads reports polled values that no send carried to that partition
// (phantom-value) or whose send failed (G1a), and summarises the reads;
// with the version orders it also keeps the last read of every offset.
func checkReads(ix *indexed, orders []versionOrder, f *findings) readSummary {
	rs := readSummary{
		polledOffset: make([]int64, len(ix.values)),
		maxOffset:    make([]int64, len(ix.tps)),
		maxPos:       make([]int, len(ix.tps)),
		lastReadPos:  make([]int, len(ix.values)),
	}
	for i := range rs.polledOffset {
		rs.polledOffset[i] = -1
		rs.lastReadPos[i] = -1
	}
	if orders != nil {
		rs.lastAt = make([][]lastObservation, len(ix.tps))
	}
	for tp := range rs.lastAt {
		rs.lastAt[tp] = make([]lastObservation, len(orders[tp].offsets))
		for i := range rs.lastAt[tp] {
			rs.lastAt[tp][i].pos = -1
		}
	}
	for i := range rs.maxOffset {
		rs.maxOffset[i] = -1
	}
	for i := range ix.polls {
		p := &ix.polls[i]
		for _, r := range p.records {
			if r.offset > rs.maxOffset[r.tp] {
				rs.maxOffset[r.tp] = r.offset
				rs.maxPos[r.tp] = p.donePos
			}
			ix.checkRead(p, r, &rs, f)
			if rs.lastAt == nil {
				continue
			}
			if last := &rs.lastAt[r.tp][orders[r.tp].rank(r.offset)]; p.donePos >= last.pos {
				*last = lastObservation{value: r.value, pos: p.donePos}
			}
		}
	}
	return rs
}

func (ix *indexed) checkRead(p *pollRec, r polledRecord, rs *readSummary, f *findings) {
	si := ix.sendOf[r.value]
	switch {
	case si < 0:
		ex := ix.readExample(r, p.donePos)
		ex.Detail = fmt.Sprintf("poll op %d read %q at offset %d of %s; no send carried it",
			ix.opIndex(p.donePos), ix.values[r.value], r.offset, ix.tpName(r.tp))
		f.add(KindPhantomValue, ex)
		return
	case ix.sends[si].tp != r.tp:
		s := &ix.sends[si]
		ex := ix.readExample(r, s.invokePos, p.donePos)
		ex.Detail = fmt.Sprintf("poll op %d read %q at offset %d of %s; send op %d carried it to %s",
			ix.opIndex(p.donePos), ix.values[r.value], r.offset, ix.tpName(r.tp),
			ix.opIndex(s.invokePos), ix.tpName(s.tp))
		f.add(KindPhantomValue, ex)
		return
	}
	if old := rs.polledOffset[r.value]; old < 0 || r.offset < old {
		if old < 0 {
			rs.valuesPolled++
		}
		rs.polledOffset[r.value] = r.offset
	}
	rs.lastReadPos[r.value] = max(rs.lastReadPos[r.value], p.donePos)
	if s := &ix.sends[si]; s.outcome == outcomeFail {
		ex := ix.readExample(r, s.invokePos, s.donePos, p.donePos)
		ex.Detail = fmt.Sprintf("poll op %d read %q at offset %d of %s; its send failed (op %d)",
			ix.opIndex(p.donePos), ix.values[r.value], r.offset, ix.tpName(r.tp), ix.opIndex(s.donePos))
		f.add(KindG1a, ex)
	}
}

// readExample starts an example about a polled record and the ops at
// positions.
func (ix *indexed) readExample(r polledRecord, positions ...int) Example {
	ex := Example{Partition: ix.tpName(r.tp), Offset: r.offset, Values: []string{ix.values[r.value]}}
	for _, pos := range positions {
		ex.Ops = append(ex.Ops, ix.opIndex(pos))
	}
	return ex
}

// checkUnread reports acknowledged sends no poll returned: lost-write when
// a poll read past their offset, unseen otherwise; and read ones the log
// dropped later (checkOverwritten). Sends below their
// partition's log start in logStarts are counted as deleted instead:
// retention removed them before anyone read them; sends superseded on a
// compacted partition are counted as compacted. It returns the three
// counts.
func checkUnread(ix *indexed, orders []versionOrder, rs readSummary, logStarts map[history.TopicPartition]int64,
	superseded []bool, f *findings) (unseen, deleted, compacted int) {
	for i := range ix.sends {
		s := &ix.sends[i]
		if s.outcome != outcomeOK {
			continue
		}
		if rs.polledOffset[s.value] >= 0 {
			if superseded == nil || !superseded[s.value] {
				ix.checkOverwritten(s, orders, rs, f)
			}
			continue
		}
		if start, ok := logStarts[ix.tps[s.tp]]; ok && s.offset < start {
			deleted++
			continue
		}
		if superseded != nil && superseded[s.value] {
			compacted++
			continue
		}
		value := ix.values[s.value]
		ex := Example{Partition: ix.tpName(s.tp), Offset: s.offset, Values: []string{value}}
		if maxOffset := rs.maxOffset[s.tp]; s.offset <= maxOffset {
			ex.Ops = []int{ix.opIndex(s.donePos), ix.opIndex(rs.maxPos[s.tp])}
			ex.Detail = fmt.Sprintf("%q acknowledged at offset %d of %s (op %d) was never polled, "+
				"though poll op %d read offset %d", value, s.offset, ix.tpName(s.tp),
				ix.opIndex(s.donePos), ix.opIndex(rs.maxPos[s.tp]), maxOffset)
			f.add(KindLostWrite, ex)
			continue
		}
		unseen++
		ex.Ops = []int{ix.opIndex(s.donePos)}
		ex.Detail = fmt.Sprintf("%q acknowledged at offset %d of %s (op %d) was never polled",
			value, s.offset, ix.tpName(s.tp), ix.opIndex(s.donePos))
		f.add(KindUnseen, ex)
	}
	return unseen, deleted, compacted
}

// checkOverwritten reports an acknowledged send that polls read, as a
// lost write when the last poll of its offset found another value there
// and no poll returned it again, at any offset, after that one: the log
// no longer holds it.
func (ix *indexed) checkOverwritten(s *sendRec, orders []versionOrder, rs readSummary, f *findings) {
	last := rs.lastAt[s.tp][orders[s.tp].rank(s.offset)]
	if last.pos < 0 || last.value == s.value || rs.lastReadPos[s.value] > last.pos {
		return
	}
	value := ix.values[s.value]
	f.add(KindLostWrite, Example{
		Partition: ix.tpName(s.tp), Offset: s.offset, Values: []string{value, ix.values[last.value]},
		Ops: []int{ix.opIndex(s.donePos), ix.opIndex(rs.lastReadPos[s.value]), ix.opIndex(last.pos)},
		Detail: fmt.Sprintf("%q acknowledged at offset %d of %s (op %d) was read (last by poll op %d), "+
			"but poll op %d then read %q at that offset, and no poll read %q again", value, s.offset,
			ix.tpName(s.tp), ix.opIndex(s.donePos), ix.opIndex(rs.lastReadPos[s.value]),
			ix.opIndex(last.pos), ix.values[last.value], value),
	})
}

// lastRead is where a consumer's last poll of a partition ended.
type lastRead struct {
	offset int64
	pos    int
}

// checkConsumers walks each consumer's polls in order, comparing each
// poll's records of a partition with each other (int-poll-skip,
// int-nonmonotonic-poll) and with where the consumer's previous poll of the
// partition ended (poll-skip, nonmonotonic-poll).
func checkConsumers(ix *indexed, orders []versionOrder, f *findings) {
	var byTP []int // reused: a poll's record indices grouped by partition
	for _, c := range ix.consumers {
		last := map[int32]lastRead{}
		for _, step := range c.steps {
			if step.poll < 0 {
				if step.outcome != outcomeFail {
					clear(last)
				}
				continue
			}
			p := &ix.polls[step.poll]
			switch p.outcome {
			case outcomeInfo:
				clear(last)
				continue
			case outcomeOK:
			default:
				continue
			}
			byTP = byTP[:0]
			for i := range p.records {
				byTP = append(byTP, i)
			}
			slices.SortStableFunc(byTP, func(a, b int) int {
				return cmp.Compare(p.records[a].tp, p.records[b].tp)
			})
			for lo := 0; lo < len(byTP); {
				hi := lo + 1
				tp := p.records[byTP[lo]].tp
				for hi < len(byTP) && p.records[byTP[hi]].tp == tp {
					hi++
				}
				ix.checkPollRun(p, byTP[lo:hi], &orders[tp], last, f)
				lo = hi
			}
		}
	}
}

// checkPollRun checks one poll's records of one partition, run indexing
// p.records in the order returned.
func (ix *indexed) checkPollRun(p *pollRec, run []int, vo *versionOrder, last map[int32]lastRead, f *findings) {
	first := p.records[run[0]]
	if prev, ok := last[first.tp]; ok {
		rankPrev, rankFirst := vo.rank(prev.offset), vo.rank(first.offset)
		if delta := rankFirst - rankPrev; delta != 1 && !(delta > 1 && vo.compactedAway(rankPrev, rankFirst)) {
			ex := Example{
				Partition: ix.tpName(first.tp), Offset: first.offset,
				Ops: []int{ix.opIndex(prev.pos), ix.opIndex(p.donePos)},
			}
			ex.Detail = fmt.Sprintf("process %d: poll op %d ended at offset %d of %s, its next poll op %d "+
				"started at %d", p.process, ex.Ops[0], prev.offset, ex.Partition, ex.Ops[1], first.offset)
			if delta > 1 {
				ex.Detail += ", skipping " + vo.skipped(rankPrev, rankFirst)
				f.add(KindPollSkip, ex)
			} else {
				f.add(KindNonmonotonicPoll, ex)
			}
		}
	}
	for i := 1; i < len(run); i++ {
		a, b := p.records[run[i-1]], p.records[run[i]]
		ra, rb := vo.rank(a.offset), vo.rank(b.offset)
		if rb-ra == 1 || (rb-ra > 1 && vo.compactedAway(ra, rb)) {
			continue
		}
		ex := Example{
			Partition: ix.tpName(a.tp), Offset: b.offset,
			Values: []string{ix.values[a.value], ix.values[b.value]}, Ops: []int{ix.opIndex(p.donePos)},
		}
		ex.Detail = fmt.Sprintf("poll op %d read offset %d then %d of %s",
			ex.Ops[0], a.offset, b.offset, ex.Partition)
		if rb-ra > 1 {
			ex.Detail += ", skipping " + vo.skipped(ra, rb)
			f.add(KindIntPollSkip, ex)
		} else {
			f.add(KindIntNonmonotonicPoll, ex)
		}
	}
	end := p.records[run[len(run)-1]]
	last[first.tp] = lastRead{offset: end.offset, pos: p.donePos}
}

// knownSend is a send whose landing offset is known: acknowledged, or
// read by a poll.
type knownSend struct {
	send   int
	offset int64
}

// checkSendOrder reports nonmonotonic-send: a process's later send to a
// partition at or below an earlier one. Which pairs count is order's
// business (see SendOrder). Failed sends take no part: G1a covers them.
func checkSendOrder(ix *indexed, order SendOrder, rs readSummary, f *findings) {
	var known []knownSend
	for i := range ix.sends {
		s := &ix.sends[i]
		switch {
		case s.outcome == outcomeOK:
			known = append(known, knownSend{i, s.offset})
		case s.outcome != outcomeFail && rs.polledOffset[s.value] >= 0:
			known = append(known, knownSend{i, rs.polledOffset[s.value]})
		}
	}
	// Sends are indexed in invoke order, so sorting by (process, partition)
	// stably keeps each group in invoke order.
	slices.SortStableFunc(known, func(a, b knownSend) int {
		sa, sb := &ix.sends[a.send], &ix.sends[b.send]
		if c := cmp.Compare(sa.process, sb.process); c != 0 {
			return c
		}
		return cmp.Compare(sa.tp, sb.tp)
	})
	for lo := 0; lo < len(known); {
		hi := lo + 1
		for hi < len(known) && ix.sends[known[hi].send].process == ix.sends[known[lo].send].process &&
			ix.sends[known[hi].send].tp == ix.sends[known[lo].send].tp {
			hi++
		}
		if order == SendOrderRealTime {
			ix.checkSendsRealTime(known[lo:hi], f)
		} else {
			ix.checkSendsInvoked(known[lo:hi], f)
		}
		lo = hi
	}
}

// checkSendsInvoked checks one process's sends to one partition, in invoke
// order: each must land above the one invoked before it.
func (ix *indexed) checkSendsInvoked(group []knownSend, f *findings) {
	for i := 1; i < len(group); i++ {
		if group[i].offset <= group[i-1].offset {
			ix.reportSendPair(group[i-1], group[i], "was invoked after", f)
		}
	}
}

// checkSendsRealTime checks one process's sends to one partition, in invoke
// order: each must land above every acknowledged send of the process that
// completed before it was invoked. Only acknowledged sends are earlier
// sends here: an info send may still land after its completion.
func (ix *indexed) checkSendsRealTime(group []knownSend, f *findings) {
	var acked []knownSend
	for _, k := range group {
		if ix.sends[k.send].outcome == outcomeOK {
			acked = append(acked, k)
		}
	}
	slices.SortFunc(acked, func(a, b knownSend) int {
		return cmp.Compare(ix.sends[a.send].donePos, ix.sends[b.send].donePos)
	})
	next := 0
	best := -1 // index into acked of the highest offset completed so far
	for _, k := range group {
		invoked := ix.sends[k.send].invokePos
		for next < len(acked) && ix.sends[acked[next].send].donePos < invoked {
			if best < 0 || acked[next].offset > acked[best].offset {
				best = next
			}
			next++
		}
		if best >= 0 && k.offset <= acked[best].offset {
			ix.reportSendPair(acked[best], k, "was invoked after the acknowledgement of", f)
		}
	}
}

func (ix *indexed) reportSendPair(earlier, later knownSend, relation string, f *findings) {
	se, sl := &ix.sends[earlier.send], &ix.sends[later.send]
	ops := []int{ix.opIndex(se.invokePos), ix.opIndex(sl.invokePos)}
	if sl.donePos >= 0 {
		ops = append(ops, ix.opIndex(sl.donePos))
	}
	slices.Sort(ops)
	f.add(KindNonmonotonicSend, Example{
		Partition: ix.tpName(sl.tp), Offset: later.offset,
		Values: []string{ix.values[se.value], ix.values[sl.value]}, Ops: ops,
		Detail: fmt.Sprintf("process %d: send %q (op %d) %s send %q (op %d) but landed at offset %d of %s, "+
			"not above %d", sl.process, ix.values[sl.value], ix.opIndex(sl.invokePos), relation,
			ix.values[se.value], ix.opIndex(se.invokePos), later.offset, ix.tpName(sl.tp), earlier.offset),
	})
}
