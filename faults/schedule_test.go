package faults

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testProfile = Profile{
	Targets:      []string{"b1", "b2", "b3"},
	Clients:      []string{"c1"},
	Start:        time.Second,
	End:          30 * time.Second,
	IntervalMean: time.Second,
	DurationMax:  5 * time.Second,
	Kinds: []Kind{KindKill, KindPowerLoss, KindPause, KindPartition, KindBlock, KindSlowDisk,
		KindFailSyncs, KindDiskFull, KindCorrupt, KindReadErrors, KindMetaErrors, KindClockJump, KindClockDrift},
}

func TestScheduleRoundTripsThroughJSON(t *testing.T) {
	for seed := uint64(0); seed < 50; seed++ {
		s := Generate(rand.New(rand.NewPCG(seed, 1)), testProfile)
		if len(s.Actions) == 0 {
			t.Fatalf("seed %d generated no actions", seed)
		}
		back, err := Parse(s.Marshal(), []string{"b1", "b2", "b3", "c1"})
		if err != nil {
			t.Fatalf("seed %d: parse own output: %v\n%s", seed, err, s.Marshal())
		}
		if !reflect.DeepEqual(s, back) {
			t.Fatalf("seed %d: round trip changed the schedule\nbefore %v\nafter  %v", seed, s, back)
		}
		if !bytes.Equal(s.Marshal(), back.Marshal()) {
			t.Fatalf("seed %d: marshal not stable", seed)
		}
	}
}

func TestGenerateIsDeterministicAndHeals(t *testing.T) {
	a := Generate(rand.New(rand.NewPCG(7, 7)), testProfile)
	b := Generate(rand.New(rand.NewPCG(7, 7)), testProfile)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different schedules")
	}
	c := Generate(rand.New(rand.NewPCG(8, 7)), testProfile)
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same schedule")
	}
	// Every fault is undone by End, one recovery per fault.
	opened := map[string]int{}
	for _, act := range a.Actions {
		if act.At > Duration(testProfile.End) {
			t.Fatalf("action after End: %v", act)
		}
		switch act.Op {
		case Kill, PowerLoss:
			opened["down "+act.Node]++
		case Restart:
			opened["down "+act.Node]--
		case Pause:
			opened["paused "+act.Node]++
		case Resume:
			opened["paused "+act.Node]--
		case Partition, Block:
			opened["network"]++
		case Heal:
			opened["network"]--
		case SlowDisk, FailSyncs, DiskFull, ReadErrors, MetaErrors:
			opened["disk "+act.Node]++
		case DiskHeal:
			opened["disk "+act.Node]--
		}
	}
	for what, n := range opened {
		if n != 0 {
			t.Fatalf("%s: %d faults more than recoveries", what, n)
		}
	}
}

func TestInvalidScheduleNamesEntryAndField(t *testing.T) {
	nodes := []string{"b1", "c1"}
	cases := []struct{ json, want string }{
		{`{"actions":[{"at":"1s","op":"kill","node":"b1"},{"at":"2s","op":"kil","node":"b1"}]}`, `actions[1] (op "kil" at 2s): field "op": unknown op "kil"`},
		{`{"actions":[{"at":"1s","op":"kill","node":"b9"}]}`, `actions[0] (op "kill" at 1s): field "node": unknown node "b9"`},
		{`{"actions":[{"at":"1s","op":"kill"}]}`, `actions[0] (op "kill" at 1s): field "node": required by op "kill"`},
		{`{"actions":[{"at":"1s","op":"heal","node":"b1"}]}`, `field "node": not used by op "heal"`},
		{`{"actions":[{"at":"soon","op":"heal"}]}`, `actions[0]: field "at": time: invalid duration "soon"`},
		{`{"actions":[{"at":"1s","op":"heal","nod":"b1"}]}`, `actions[0]: field "nod": unknown field`},
		{`{"actions":[{"at":"1s","op":"slow-disk","node":"b1","factor":0.5}]}`, `field "factor": 0.5 is below 1`},
		{`{"actions":[{"at":"1s","op":"partition","groups":[["b1"],[]]}]}`, `field "groups": group 1 is empty`},
		{`{"actions":[{"at":"1s","op":"meta-errors","node":"b1","rate":1.5}]}`, `actions[0] (op "meta-errors" at 1s): field "rate": 1.5 is not a probability`},
		{`{"actions":[{"at":"1s","op":"meta-errors","node":"b1","rate":-0.1}]}`, `field "rate": -0.1 is not a probability`},
		{`{"actions":[{"at":"1s","op":"meta-errors","node":"b1"}]}`, `field "rate": required by op "meta-errors"`},
		{`{"actions":[{"at":"1s","op":"meta-errors","node":"b1","rate":0.1,"count":2}]}`, `field "count": not used by op "meta-errors"`},
		{`{"actions":[{"at":"1s","op":"fail-syncs","node":"b1","count":"two"}]}`, `actions[0]: field "count": want a whole number, found string`},
		{`{"actions":[{"at":1,"op":"heal"}]}`, `actions[0]: field "at": want a duration string such as "1.5s", found 1`},
		{`{"actions":[7]}`, `actions[0]: want an object such as`},
		{`{"actoins":[]}`, `unknown field "actoins"`},
		{``, `fault schedule: empty: want {"actions": [`},
		{" \n\t", `fault schedule: empty`},
		{`[{"at":"1s","op":"heal"}]`, `want a JSON object {"actions": [{"at": "2s", "op": "kill", "node": "b1"}, ...]}, found an array`},
		{`{}`, `no "actions" field`},
		{"{\"actions\": [\n  {\"at\": \"1s\", \"op\": \"heal\"},\n  {\"at\": \"2s\" \"op\": \"heal\"}\n]}", `line 3, column 15: invalid character '"' after object key:value pair`},
		{`{"actions": [`, `the JSON ends before it is complete`},
		{`{"actions": {}}`, `line 1, column 13: field "actions": want a list, found object`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.json), nodes)
		if err == nil {
			t.Errorf("%s: no error", c.json)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got  %v\n want %s", c.json, err, c.want)
		}
	}
}

func TestEmptySchedulesRoundTrip(t *testing.T) {
	data, err := json.Marshal(Schedule{})
	if err != nil || string(data) != `{"actions":[]}` {
		t.Fatalf("an empty schedule marshals as %s (%v)", data, err)
	}
	for _, in := range []string{`{"actions":[]}`, `{"actions":null}`} {
		if s, err := Parse([]byte(in), nil); err != nil || len(s.Actions) != 0 {
			t.Errorf("%s: %v, %d actions", in, err, len(s.Actions))
		}
	}
}

// TestSwarmOccasionalKindsKeepOtherSeedsMixes: an occasional kind joins
// about its share of the swarm's variants, and a variant that does not
// draw it is the one the profile without it gives.
func TestSwarmOccasionalKindsKeepOtherSeedsMixes(t *testing.T) {
	with := testProfile
	with.SwarmOccasional, with.SwarmOccasionalShare = []Kind{KindMetaErrors}, 0.25
	const seeds = 400
	drew := 0
	for seed := uint64(0); seed < seeds; seed++ {
		plain := testProfile.Swarm(rand.New(rand.NewPCG(seed, 3)))
		v := with.Swarm(rand.New(rand.NewPCG(seed, 3)))
		if len(v.SwarmOccasional) != 0 || v.SwarmOccasionalShare != 0 {
			t.Fatalf("seed %d: a variant keeps occasional kinds %v", seed, v.SwarmOccasional)
		}
		if len(v.Kinds) == len(plain.Kinds)+1 && v.Kinds[len(v.Kinds)-1] == KindMetaErrors {
			drew++
			v.Kinds = v.Kinds[:len(plain.Kinds)]
		}
		if !reflect.DeepEqual(v, plain) {
			t.Fatalf("seed %d: the variant changed beyond the occasional kind:\n%+v\n%+v", seed, v, plain)
		}
	}
	if drew < seeds/8 || drew > seeds*3/8 {
		t.Fatalf("%d of %d variants drew the occasional kind at share 0.25", drew, seeds)
	}
	spec := ProfileSpec{Kinds: []Kind{KindKill}}
	if p := spec.Apply(with); len(p.SwarmOccasional) != 0 {
		t.Fatalf("a spec naming kinds kept the occasional ones: %v", p.SwarmOccasional)
	}
}
