package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventKind says whether a world event broke something or repaired it.
type EventKind int

// Event kinds.
const (
	// EventOther is an action this package does not know.
	EventOther EventKind = iota
	// EventFault broke something: a kill, a partition, a slow disk.
	EventFault
	// EventRecovery repaired something: a restart, a heal.
	EventRecovery
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventFault:
		return "fault"
	case EventRecovery:
		return "recovery"
	}
	return "other"
}

// eventKinds classifies the world's fault actions by name.
var eventKinds = map[string]EventKind{
	"kill": EventFault, "power-loss": EventFault, "pause": EventFault,
	"partition": EventFault, "block": EventFault,
	"slow-disk": EventFault, "fail-syncs": EventFault, "disk-capacity": EventFault,
	"disk-full": EventFault, "corrupt": EventFault, "read-errors": EventFault, "meta-errors": EventFault,
	"clock-jump": EventFault, "clock-drift": EventFault,
	"restart": EventRecovery, "resume": EventRecovery, "heal": EventRecovery,
	"disk-heal": EventRecovery,
}

// WorldEvent is one action a run's world took, parsed from a line such as
// "9.089957s power-loss b1".
type WorldEvent struct {
	// At is simulated time since the run began.
	At time.Duration
	// Action is the action's name ("power-loss"); Args the rest ("b1").
	Action, Args string
	Kind         EventKind
	// Details are the indented lines that followed the action (what a
	// power loss did to each file).
	Details []string
}

// Text is the event without its time: "power-loss b1".
func (e WorldEvent) Text() string {
	if e.Args == "" {
		return e.Action
	}
	return e.Action + " " + e.Args
}

// Label is a short name for a chart: the action and the node it hit.
// Arguments beyond the first (a slow disk's factor, a jump's size) and a
// partition's groups are left to the timeline.
func (e WorldEvent) Label() string {
	first, _, _ := strings.Cut(e.Args, " ")
	if first == "" || e.Action == "partition" {
		return e.Action
	}
	return e.Action + " " + first
}

// worldEventsMax bounds how many lines ParseWorldEvents reads.
const worldEventsMax = 100_000

// ParseWorldEvents reads a run's world event lines: a time in seconds with
// an "s" suffix, a space, an action and its arguments; a line whose text
// after the time is indented is a detail of the action before it. Lines
// that do not parse are skipped: a report shows what it can.
func ParseWorldEvents(lines []string) []WorldEvent {
	events, _ := parseWorldEvents(lines)
	return events
}

// parseWorldEvents is ParseWorldEvents, also returning the lines skipped.
func parseWorldEvents(lines []string) (events []WorldEvent, skipped []string) {
	if len(lines) > worldEventsMax {
		skipped = append(skipped, fmt.Sprintf("(%d lines past the first %d)", len(lines)-worldEventsMax, worldEventsMax))
		lines = lines[:worldEventsMax]
	}
	for _, line := range lines {
		at, rest, ok := parseEventTime(line)
		if !ok {
			skipped = append(skipped, line)
			continue
		}
		if strings.HasPrefix(rest, " ") {
			detail := strings.TrimSpace(rest)
			if len(events) == 0 || detail == "" {
				skipped = append(skipped, line)
				continue
			}
			last := &events[len(events)-1]
			last.Details = append(last.Details, detail)
			continue
		}
		action, args, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if action == "" {
			skipped = append(skipped, line)
			continue
		}
		events = append(events, WorldEvent{
			At: at, Action: action, Args: strings.TrimSpace(args), Kind: eventKinds[action],
		})
	}
	// The world writes in time order; a hand-edited list may not be.
	slices.SortStableFunc(events, func(a, b WorldEvent) int { return cmp.Compare(a.At, b.At) })
	return events, skipped
}

// parseEventTime splits "2.285989s kill b1" into 2.285989s and "kill b1".
func parseEventTime(line string) (time.Duration, string, bool) {
	field, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasSuffix(field, "s") {
		return 0, "", false
	}
	at, err := time.ParseDuration(field)
	if err != nil || at < 0 {
		return 0, "", false
	}
	return at, rest, true
}

// spanKind is what a fault span took away.
type spanKind int

const (
	spanDown spanKind = iota
	spanPaused
	spanNetwork
	spanDisk
	spanKinds
)

// spanKindNames name the span kinds in legends.
var spanKindNames = [spanKinds]string{"node down", "node paused", "network cut", "disk fault"}

// spanOpens and spanCloses say which actions open and close which spans.
var (
	spanOpens = map[string]spanKind{
		"kill": spanDown, "power-loss": spanDown, "pause": spanPaused,
		"partition": spanNetwork, "block": spanNetwork,
		"slow-disk": spanDisk, "fail-syncs": spanDisk, "disk-capacity": spanDisk,
		"disk-full": spanDisk, "read-errors": spanDisk, "meta-errors": spanDisk,
	}
	spanCloses = map[string]spanKind{
		"restart": spanDown, "resume": spanPaused, "heal": spanNetwork, "disk-heal": spanDisk,
	}
)

// faultSpan is an interval during which something was broken: a node down
// or paused, the network cut, a disk faulty.
type faultSpan struct {
	kind     spanKind
	node     string
	from, to time.Duration
}

// faultSpans pairs the events that open a span with those that close it,
// per node (the network is one span: a heal ends every cut). A span still
// open at end ends there.
func faultSpans(events []WorldEvent, end time.Duration) []faultSpan {
	type key struct {
		kind spanKind
		node string
	}
	open := map[key]time.Duration{}
	var spans []faultSpan
	for _, e := range events {
		node, _, _ := strings.Cut(e.Args, " ")
		if k, ok := spanOpens[e.Action]; ok {
			if k == spanNetwork {
				node = ""
			}
			if _, already := open[key{k, node}]; !already {
				open[key{k, node}] = e.At
			}
			continue
		}
		if k, ok := spanCloses[e.Action]; ok {
			if k == spanNetwork {
				node = ""
			}
			if from, was := open[key{k, node}]; was {
				delete(open, key{k, node})
				spans = append(spans, faultSpan{kind: k, node: node, from: from, to: e.At})
			}
		}
	}
	for k, from := range open {
		spans = append(spans, faultSpan{kind: k.kind, node: k.node, from: from, to: max(end, from)})
	}
	// Spans came partly from a map: sort on a total order.
	slices.SortFunc(spans, func(a, b faultSpan) int {
		return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.kind, b.kind), cmp.Compare(a.node, b.node), cmp.Compare(a.to, b.to))
	})
	return spans
}
