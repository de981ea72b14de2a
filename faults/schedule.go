// Package faults holds fault schedules: timed actions on a simulated world
// (crash or restart a node, partition the network, slow or fail a disk,
// move a clock). A schedule is data: it is generated from a seed, saved to
// and read from JSON, applied to a world, and shrunk when it makes a check
// fail.
package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Op names a fault action.
type Op string

// Fault actions. The fields each one needs are listed in opFields.
const (
	Kill       Op = "kill"        // node: the process dies; page cache survives
	PowerLoss  Op = "power-loss"  // node: the machine dies; unsynced data may be lost or torn
	Restart    Op = "restart"     // node
	Pause      Op = "pause"       // node: SIGSTOP or a long GC pause
	Resume     Op = "resume"      // node
	Partition  Op = "partition"   // groups: cut the network between groups, both ways
	Block      Op = "block"       // from, to: cut one direction of one link
	Heal       Op = "heal"        // end every partition and block
	SlowDisk   Op = "slow-disk"   // node, factor
	FailSyncs  Op = "fail-syncs"  // node, count: the next count syncs fail with EIO
	DiskFull   Op = "disk-full"   // node: no free space from now on
	Corrupt    Op = "corrupt"     // node, count: flip a bit in count stored bytes
	ReadErrors Op = "read-errors" // node, rate: each read fails with this probability
	MetaErrors Op = "meta-errors" // node, rate: each create, remove, rename, mkdir, truncate fails, each write is cut short, with this probability
	DiskHeal   Op = "disk-heal"   // node: end slow-disk, fail-syncs, disk-full, read-errors and meta-errors
	ClockJump  Op = "clock-jump"  // node, by: move the wall clock
	ClockDrift Op = "clock-drift" // node, ppm: oscillator error
)

// opFields lists the fields each op requires; every other field must be
// left out.
var opFields = map[Op][]string{
	Kill:       {"node"},
	PowerLoss:  {"node"},
	Restart:    {"node"},
	Pause:      {"node"},
	Resume:     {"node"},
	Partition:  {"groups"},
	Block:      {"from", "to"},
	Heal:       {},
	SlowDisk:   {"node", "factor"},
	FailSyncs:  {"node", "count"},
	DiskFull:   {"node"},
	Corrupt:    {"node", "count"},
	ReadErrors: {"node", "rate"},
	MetaErrors: {"node", "rate"},
	DiskHeal:   {"node"},
	ClockJump:  {"node", "by"},
	ClockDrift: {"node", "ppm"},
}

// Ops lists every op, sorted.
func Ops() []Op {
	ops := make([]Op, 0, len(opFields))
	for op := range opFields {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

// Action is one timed fault.
type Action struct {
	At     Duration   `json:"at"`
	Op     Op         `json:"op"`
	Node   string     `json:"node,omitempty"`
	Groups [][]string `json:"groups,omitempty"`
	From   string     `json:"from,omitempty"`
	To     string     `json:"to,omitempty"`
	Factor float64    `json:"factor,omitempty"`
	Count  int        `json:"count,omitempty"`
	Rate   float64    `json:"rate,omitempty"`
	By     Duration   `json:"by,omitempty"`
	PPM    float64    `json:"ppm,omitempty"`
}

func (a Action) String() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// present reports which optional fields an action sets.
func (a Action) present() map[string]bool {
	return map[string]bool{
		"node": a.Node != "", "groups": len(a.Groups) > 0, "from": a.From != "",
		"to": a.To != "", "factor": a.Factor != 0, "count": a.Count != 0,
		"rate": a.Rate != 0, "by": a.By != 0, "ppm": a.PPM != 0,
	}
}

// Schedule is a list of actions in time order.
type Schedule struct {
	Actions []Action `json:"actions"`
}

// MarshalJSON writes an empty schedule's actions as [], never null.
func (s Schedule) MarshalJSON() ([]byte, error) {
	actions := s.Actions
	if actions == nil {
		actions = []Action{}
	}
	return json.Marshal(struct {
		Actions []Action `json:"actions"`
	}{actions})
}

// actionsMax bounds a schedule.
const actionsMax = 100_000

// Sort orders the actions by time, keeping the given order among equal
// times.
func (s *Schedule) Sort() {
	sort.SliceStable(s.Actions, func(i, j int) bool { return s.Actions[i].At < s.Actions[j].At })
}

// Validate checks every action against the nodes of the world it will run
// in (nil nodes: names are not checked). The error names the entry and the
// field.
func (s Schedule) Validate(nodes []string) error {
	if len(s.Actions) > actionsMax {
		return fmt.Errorf("schedule has %d actions, more than %d", len(s.Actions), actionsMax)
	}
	for i, a := range s.Actions {
		if err := a.validate(nodes); err != nil {
			return fmt.Errorf("actions[%d] (op %q at %v): %w", i, a.Op, a.At, err)
		}
	}
	return nil
}

func (a Action) validate(nodes []string) error {
	required, known := opFields[a.Op]
	if !known {
		return fmt.Errorf("field \"op\": unknown op %q (known: %s)", a.Op, joinOps(Ops()))
	}
	if a.At < 0 {
		return fmt.Errorf("field \"at\": negative time %v", a.At)
	}
	present := a.present()
	for _, f := range required {
		if !present[f] {
			return fmt.Errorf("field %q: required by op %q", f, a.Op)
		}
	}
	for _, f := range sortedKeys(present) {
		if present[f] && !slices.Contains(required, f) {
			return fmt.Errorf("field %q: not used by op %q", f, a.Op)
		}
	}
	return a.validateValues(nodes)
}

func (a Action) validateValues(nodes []string) error {
	checkNode := func(field, name string) error {
		if nodes != nil && !slices.Contains(nodes, name) {
			return fmt.Errorf("field %q: unknown node %q (nodes: %s)", field, name, strings.Join(nodes, ", "))
		}
		return nil
	}
	for _, f := range []struct{ field, name string }{{"node", a.Node}, {"from", a.From}, {"to", a.To}} {
		if f.name == "" {
			continue
		}
		if err := checkNode(f.field, f.name); err != nil {
			return err
		}
	}
	for gi, g := range a.Groups {
		if len(g) == 0 {
			return fmt.Errorf("field \"groups\": group %d is empty", gi)
		}
		for _, name := range g {
			if err := checkNode("groups", name); err != nil {
				return err
			}
		}
	}
	switch {
	case a.Op == SlowDisk && a.Factor < 1:
		return fmt.Errorf("field \"factor\": %g is below 1", a.Factor)
	case (a.Op == FailSyncs || a.Op == Corrupt) && a.Count < 0:
		return fmt.Errorf("field \"count\": %d is negative", a.Count)
	case (a.Op == ReadErrors || a.Op == MetaErrors) && (a.Rate < 0 || a.Rate > 1):
		return fmt.Errorf("field \"rate\": %g is not a probability", a.Rate)
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinOps(ops []Op) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = string(op)
	}
	return strings.Join(names, ", ")
}

// Parse reads a schedule from JSON and validates it against nodes (nil:
// names unchecked). Errors name the entry and the field, or the line and
// column of a syntax error.
func Parse(data []byte, nodes []string) (Schedule, error) {
	raw, err := decodeActions(data)
	if err != nil {
		return Schedule{}, fmt.Errorf("fault schedule: %w", err)
	}
	if len(raw) > actionsMax {
		return Schedule{}, fmt.Errorf("fault schedule: %d actions, more than %d", len(raw), actionsMax)
	}
	s := Schedule{Actions: make([]Action, len(raw))}
	for i, r := range raw {
		if err := decodeAction(r, &s.Actions[i]); err != nil {
			return Schedule{}, fmt.Errorf("fault schedule: actions[%d]: %w", i, err)
		}
	}
	if err := s.Validate(nodes); err != nil {
		return Schedule{}, fmt.Errorf("fault schedule: %w", err)
	}
	return s, nil
}

// scheduleShape is what a schedule file looks like, for error messages.
const scheduleShape = `{"actions": [{"at": "2s", "op": "kill", "node": "b1"}, ...]}`

// decodeActions reads the top level of a schedule: one object whose only
// field is "actions", a list.
func decodeActions(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty: want %s", scheduleShape)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("want a JSON object %s, found %s", scheduleShape, jsonKind(trimmed[0]))
	}
	var list struct {
		Actions []json.RawMessage `json:"actions"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, errors.New(DescribeJSONError(data, err))
	}
	if dec.More() {
		line, col := lineColumn(data, int(dec.InputOffset()))
		return nil, fmt.Errorf("line %d, column %d: text after the schedule's closing brace", line, col)
	}
	if list.Actions == nil {
		// Either no "actions" field, an error, or "actions": null, an
		// empty schedule as older saved runs wrote it.
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, errors.New(DescribeJSONError(data, err))
		}
		if _, ok := fields["actions"]; !ok {
			return nil, fmt.Errorf("no \"actions\" field: want %s", scheduleShape)
		}
	}
	return list.Actions, nil
}

// DescribeJSONError says what is wrong with a JSON document in a user's
// words: where a syntax error is (line and column), which field has the
// wrong type, which field is unknown.
func DescribeJSONError(data []byte, err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		// Offset counts the bytes read, the bad one included.
		line, col := lineColumn(data, int(syntax.Offset)-1)
		return fmt.Sprintf("line %d, column %d: %s", line, col, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends before it is complete"
	case errors.As(err, &typ):
		line, col := lineColumn(data, int(typ.Offset)-1) // as for syntax errors
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Sprintf("line %d, column %d: field %q: want %s, found %s", line, col, field, goKindInJSON(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

// goKindInJSON names what JSON value a Go type reads from.
func goKindInJSON(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// lineColumn turns a byte offset into a 1-based line and column.
func lineColumn(data []byte, offset int) (int, int) {
	offset = min(max(offset, 0), len(data))
	before := data[:offset]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := offset - bytes.LastIndexByte(before, '\n')
	return line, col
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return fmt.Sprintf("%q, which is not JSON", c)
}

// decodeAction decodes one action field by field, so that an error names
// the field it is about whatever kind of error it is.
func decodeAction(raw json.RawMessage, a *Action) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("want an object such as {\"at\": \"2s\", \"op\": \"kill\", \"node\": \"b1\"}, found %s", jsonKind(bytes.TrimSpace(raw)[0]))
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != "at" && name != "op" && !slices.Contains(allFields, name) {
			return fmt.Errorf("field %q: unknown field", name)
		}
		one, _ := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		if err := json.Unmarshal(one, a); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				return fmt.Errorf("field %q: want %s, found %s", name, goKindInJSON(typ.Type), typ.Value)
			}
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	return nil
}

var allFields = []string{"node", "groups", "from", "to", "factor", "count", "rate", "by", "ppm"}

// Marshal writes the schedule as indented JSON, one action per line.
func (s Schedule) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("{\"actions\": [\n")
	for i, a := range s.Actions {
		b.WriteString("  ")
		b.WriteString(a.String())
		if i < len(s.Actions)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

// Duration is a time.Duration that reads and writes as "1.5s".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"1.5s\", found %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }
