package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/faults"
)

func TestScenarioFileReadsEveryField(t *testing.T) {
	f, err := ParseFile([]byte(`# a run written down
scenario: single-broker
seed: 7
params: {flush: none, acks: "1"}
bugs: [dedupe-off]
run: 12s
drain: 4s
events_max: 900000
swarm: false
faults:
  profile: {kinds: [kill, power-loss, meta-errors], interval_mean: 1.5s, duration_max: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Scenario != "single-broker" || f.Seed != 7 || f.Params["flush"] != "none" || f.Params["acks"] != "1" ||
		len(f.Bugs) != 1 || time.Duration(f.Run) != 12*time.Second || time.Duration(f.Drain) != 4*time.Second ||
		f.EventsMax != 900000 || f.Profile == nil || len(f.Profile.Kinds) != 3 || f.Profile.Kinds[2] != faults.KindMetaErrors ||
		time.Duration(f.Profile.IntervalMean) != 1500*time.Millisecond || !f.Set["seed"] || f.Set["nope"] {
		t.Fatalf("parsed %+v (profile %+v)", f, f.Profile)
	}
	json, err := ParseFile([]byte(`{"scenario": "counter", "faults": {"schedule": {"actions": [{"at": "1s", "op": "kill", "node": "server"},
		{"at": "2s", "op": "meta-errors", "node": "server", "rate": 0.5}, {"at": "3s", "op": "disk-heal", "node": "server"}]}}}`))
	if err != nil || json.Schedule == nil || len(json.Schedule.Actions) != 3 || json.Schedule.Actions[1].Rate != 0.5 {
		t.Fatalf("a JSON scenario file: %v %+v", err, json)
	}
}

// TestScenarioFileErrorsNameLineAndField has one case per class of error.
func TestScenarioFileErrorsNameLineAndField(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"empty", ``, `empty: want at least "scenario: NAME"`},
		{"not a mapping", `[1, 2]`, `line 1: want a mapping of fields`},
		{"syntax", "scenario: counter\nparams: {flush: none\n", `not YAML or JSON`},
		{"unknown field", "scenario: counter\nsede: 3\n", `line 2: field "sede": unknown field (known: scenario, seed,`},
		{"missing scenario", "seed: 3\n", `field "scenario": required`},
		{"unknown scenario", "scenario: nope\n", `line 1: field "scenario": unknown scenario "nope"`},
		{"field twice", "scenario: counter\nseed: 1\nseed: 2\n", `line 3: field "seed": set twice`},
		{"bad number", "scenario: counter\nseed: seven\n", `line 2: field "seed": "seven" is not a whole number`},
		{"bad duration", "scenario: counter\nrun: soon\n", `line 2: field "run": "soon" is not a duration`},
		{"negative duration", "scenario: counter\ndrain: -1s\n", `line 2: field "drain": "-1s" is not a duration`},
		{"bad bool", "scenario: counter\nswarm: maybe\n", `line 2: field "swarm": "maybe" is not true or false`},
		{"list wanted", "scenario: counter\nbugs: dedupe-off\n", `line 2: field "bugs": want a list`},
		{"mapping wanted", "scenario: counter\nparams: [flush]\n", `line 2: field "params": want a mapping`},
		{"unknown param", "scenario: single-broker\nparams:\n  flsh: none\n", `line 3: field "params.flsh": scenario single-broker has no such parameter (known: flush, acks,`},
		{"bad param value", "scenario: single-broker\nparams: {flush: sometimes}\n", `field "params.flush": "sometimes": want one of group, none, interval`},
		{"bad checked param", "scenario: leader-crash\nparams:\n  linger.ms: 500\n", `line 3: field "params.linger.ms": "500": want auto or whole milliseconds from 0 to 200`},
		{"unplanted bug", "scenario: counter\nbugs: [skip-crc]\n", `field "bugs[0]": scenario counter does not plant bug "skip-crc"`},
		{"unknown faults field", "scenario: counter\nfaults: {profil: {}}\n", `line 2: field "faults.profil": unknown field (known: profile, schedule)`},
		{"unknown kind", "scenario: counter\nfaults:\n  profile: {kinds: [meteor]}\n", `line 3: field "faults.profile": kinds[0]: unknown fault kind "meteor"`},
		{"unknown profile field", "scenario: counter\nfaults:\n  profile: {rate: 3}\n", `line 3: field "faults.profile.rate": unknown field`},
		{"profile and schedule", "scenario: counter\nfaults:\n  profile: {}\n  schedule: {actions: []}\n", `field "faults": give a profile or a schedule, not both`},
		{"bad schedule", "scenario: counter\nfaults:\n  schedule: {actions: [{at: 1s, op: kil, node: server}]}\n", `line 3: field "faults.schedule": actions[0] (op "kil" at 1s): field "op": unknown op "kil"`},
		{"bad meta-errors rate", "scenario: counter\nfaults:\n  schedule: {actions: [{at: 1s, op: meta-errors, node: server, rate: 2}]}\n", `line 3: field "faults.schedule": actions[0] (op "meta-errors" at 1s): field "rate": 2 is not a probability`},
		{"meta-errors without a rate", "scenario: counter\nfaults:\n  schedule: {actions: [{at: 1s, op: meta-errors, node: server}]}\n", `field "rate": required by op "meta-errors"`},
	}
	for _, c := range cases {
		_, err := ParseFile([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got  %v\n want %s", c.name, err, c.want)
		}
	}
}

// TestScenarioFileProfileShapesTheSchedule: a profile with only power
// losses generates a schedule of power losses and restarts alone.
func TestScenarioFileProfileShapesTheSchedule(t *testing.T) {
	d, _ := Lookup("counter")
	o := short(4)
	o.Profile = &faults.ProfileSpec{Kinds: []faults.Kind{faults.KindPowerLoss}, IntervalMean: faults.Duration(time.Second)}
	res, err := Run(d, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Schedule.Actions) == 0 {
		t.Fatal("no faults generated")
	}
	for _, a := range res.Schedule.Actions {
		if a.Op != faults.PowerLoss && a.Op != faults.Restart {
			t.Fatalf("a power-loss profile generated %s", a.Label())
		}
	}
	if res.Profile == nil {
		t.Fatal("the result's recipe lost the profile")
	}
}
