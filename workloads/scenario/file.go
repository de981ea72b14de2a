package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-sim/sluice/faults"
)

// A scenario file is a run written down by a user, in YAML or JSON (JSON
// is YAML): which scenario, its parameters and planted bugs, the lengths,
// and either a fault profile (which kinds, how often, how long) or an
// explicit schedule. Every field is checked, and an error names the line
// and the field:
//
//	scenario: single-broker
//	seed: 7
//	params: {flush: none, acks: "1"}
//	bugs: [ack-before-sync]
//	run: 20s
//	drain: 10s
//	faults:
//	  profile: {kinds: [kill, power-loss, partition], interval_mean: 2s, duration_max: 3s}

// File is a parsed scenario file.
type File struct {
	Recipe
	// Schedule is the explicit schedule, when the file gives one.
	Schedule *faults.Schedule
	// Set says which fields the file set, by name ("seed", "run", ...),
	// so that a command line can let its own flags win.
	Set map[string]bool

	nodes map[string]*yaml.Node // the value of each top-level field
}

// fileFields are a scenario file's top-level fields.
var fileFields = []string{"scenario", "seed", "params", "bugs", "run", "drain", "events_max", "swarm", "faults"}

// ParseFile reads a scenario file and checks it against the scenario it
// names.
func ParseFile(data []byte) (File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return File{}, fmt.Errorf("not YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return File{}, errors.New("empty: want at least \"scenario: NAME\"")
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return File{}, fmt.Errorf("line %d: want a mapping of fields (%s)", top.Line, strings.Join(fileFields, ", "))
	}
	f := File{Set: map[string]bool{}, nodes: map[string]*yaml.Node{}}
	if err := f.readFields(top); err != nil {
		return File{}, err
	}
	if f.Scenario == "" {
		return File{}, errors.New("field \"scenario\": required")
	}
	def, err := Lookup(f.Scenario)
	if err != nil {
		return File{}, fieldError(f.nodes["scenario"], "scenario", err.Error())
	}
	if err := f.checkAgainst(def); err != nil {
		return File{}, err
	}
	return f, nil
}

// checkAgainst checks the parameters and bugs against the scenario's.
func (f *File) checkAgainst(def Definition) error {
	for _, name := range sortedKeys(f.Params) {
		i := slices.IndexFunc(def.Params, func(p Param) bool { return p.Name == name })
		if i < 0 {
			var known []string
			for _, p := range def.Params {
				known = append(known, p.Name)
			}
			return fieldError(f.nodes["params"], "params."+name,
				fmt.Sprintf("scenario %s has no such parameter (known: %s)", def.Name, strings.Join(known, ", ")))
		}
		if err := def.Params[i].accepts(f.Params[name]); err != nil {
			return fieldError(f.nodes["params"], "params."+name, fmt.Sprintf("%q: %v", f.Params[name], err))
		}
	}
	for i, b := range f.Bugs {
		if !slices.Contains(def.Bugs, faults.Bug(b)) {
			return fieldError(f.nodes["bugs"], fmt.Sprintf("bugs[%d]", i),
				fmt.Sprintf("scenario %s does not plant bug %q", def.Name, b))
		}
	}
	return nil
}

func (f *File) readFields(top *yaml.Node) error {
	for i := 0; i+1 < len(top.Content); i += 2 {
		key, value := top.Content[i], top.Content[i+1]
		if f.Set[key.Value] {
			return fieldError(key, key.Value, "set twice")
		}
		f.Set[key.Value] = true
		f.nodes[key.Value] = value
		var err error
		switch key.Value {
		case "scenario":
			f.Scenario, err = scalar(value, key.Value)
		case "seed":
			f.Seed, err = uintField(value, key.Value)
		case "params":
			f.Params, err = stringMap(value, key.Value)
		case "bugs":
			f.Bugs, err = stringList(value, key.Value)
		case "run":
			f.Run, err = durationField(value, key.Value)
		case "drain":
			f.Drain, err = durationField(value, key.Value)
		case "events_max":
			f.EventsMax, err = uintField(value, key.Value)
		case "swarm":
			f.Swarm, err = boolField(value, key.Value)
		case "faults":
			err = f.readFaults(value)
		default:
			err = fieldError(key, key.Value, fmt.Sprintf("unknown field (known: %s)", strings.Join(fileFields, ", ")))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readFaults reads "faults": a profile or a schedule, not both.
func (f *File) readFaults(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fieldError(n, "faults", "want a mapping with \"profile\" or \"schedule\"")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		switch key.Value {
		case "profile":
			spec, err := readProfile(value)
			if err != nil {
				return err
			}
			f.Profile = &spec
		case "schedule":
			s, err := readSchedule(value)
			if err != nil {
				return err
			}
			f.Schedule = &s
		default:
			return fieldError(key, "faults."+key.Value, "unknown field (known: profile, schedule)")
		}
	}
	if f.Profile != nil && f.Schedule != nil {
		return fieldError(n, "faults", "give a profile or a schedule, not both")
	}
	return nil
}

func readProfile(n *yaml.Node) (faults.ProfileSpec, error) {
	var spec faults.ProfileSpec
	if n.Kind != yaml.MappingNode {
		return spec, fieldError(n, "faults.profile", "want a mapping of kinds, interval_mean, duration_max")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		name := "faults.profile." + key.Value
		var err error
		switch key.Value {
		case "kinds":
			var kinds []string
			kinds, err = stringList(value, name)
			for _, k := range kinds {
				spec.Kinds = append(spec.Kinds, faults.Kind(k))
			}
		case "interval_mean":
			spec.IntervalMean, err = durationField(value, name)
		case "duration_max":
			spec.DurationMax, err = durationField(value, name)
		default:
			err = fieldError(key, name, "unknown field (known: kinds, interval_mean, duration_max)")
		}
		if err != nil {
			return spec, err
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, fieldError(n, "faults.profile", err.Error())
	}
	return spec, nil
}

// readSchedule reads an explicit schedule through the schedule parser, so
// that its errors name the action and the field as for a schedule file.
func readSchedule(n *yaml.Node) (faults.Schedule, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return faults.Schedule{}, fieldError(n, "faults.schedule", err.Error())
	}
	data, err := json.Marshal(v)
	if err != nil {
		return faults.Schedule{}, fieldError(n, "faults.schedule", err.Error())
	}
	s, err := faults.Parse(data, nil)
	if err != nil {
		return s, fieldError(n, "faults.schedule", strings.TrimPrefix(err.Error(), "fault schedule: "))
	}
	return s, nil
}

func fieldError(n *yaml.Node, field, why string) error {
	return fmt.Errorf("line %d: field %q: %s", n.Line, field, why)
}

func scalar(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fieldError(n, field, "want a single value")
	}
	return n.Value, nil
}

func uintField(n *yaml.Node, field string) (uint64, error) {
	s, err := scalar(n, field)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fieldError(n, field, fmt.Sprintf("%q is not a whole number", s))
	}
	return v, nil
}

func boolField(n *yaml.Node, field string) (bool, error) {
	s, err := scalar(n, field)
	if err != nil {
		return false, err
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fieldError(n, field, fmt.Sprintf("%q is not true or false", s))
	}
	return v, nil
}

func durationField(n *yaml.Node, field string) (faults.Duration, error) {
	s, err := scalar(n, field)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fieldError(n, field, fmt.Sprintf("%q is not a duration such as 20s or 1.5s", s))
	}
	return faults.Duration(d), nil
}

func stringList(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fieldError(n, field, "want a list such as [a, b]")
	}
	var out []string
	for i, item := range n.Content {
		s, err := scalar(item, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func stringMap(n *yaml.Node, field string) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fieldError(n, field, "want a mapping such as {flush: none}")
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		s, err := scalar(value, field+"."+key.Value)
		if err != nil {
			return nil, err
		}
		if _, dup := out[key.Value]; dup {
			return nil, fieldError(key, field+"."+key.Value, "set twice")
		}
		out[key.Value] = s
	}
	return out, nil
}
