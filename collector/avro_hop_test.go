package collector

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// multiWorld is a simulated world of several agents, each on its own node
// and restarted with the same configuration after a crash.
type multiWorld struct {
	w      *world.World
	log    bytes.Buffer
	agents map[string]*Agent
	fatal  map[string]error
	// logged collects the bodies every node's logger sinks logged.
	logged map[string][]string
}

func newMultiWorld(t *testing.T, seed uint64, confs map[string]string) *multiWorld {
	t.Helper()
	mw := &multiWorld{agents: map[string]*Agent{}, fatal: map[string]error{}, logged: map[string][]string{}}
	mw.w = world.New(world.Config{Seed: seed, Log: &mw.log})
	names := make([]string, 0, len(confs))
	for n := range confs {
		names = append(names, n)
	}
	sortStrings(names)
	for _, node := range names {
		cfg, err := config.Parse(confs[node], "a", nil)
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		eventLog := sim.LoggerFunc(func(format string, args ...any) {
			line := fmt.Sprintf(format, args...)
			i := strings.LastIndex(line, "   ")
			mw.logged[node] = append(mw.logged[node], strings.TrimSuffix(strings.TrimLeft(line[i:], " "), " }"))
		})
		mw.w.AddNode(node, func(env sim.Env) {
			mw.agents[node] = nil
			Start(cfg, Options{EventLog: eventLog, OnFatal: func(err error) { mw.fatal[node] = err }},
				func(a *Agent) { mw.agents[node] = a })(env)
		})
	}
	mw.run(100 * time.Millisecond)
	for _, node := range names {
		if mw.agents[node] == nil {
			t.Fatalf("%s did not start: %v\n%s", node, mw.fatal[node], mw.log.String())
		}
	}
	return mw
}

func (mw *multiWorld) run(d time.Duration) { mw.w.Run(mw.w.Now()+d, 0) }

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

const hopEvents = 20000

const hopUpstream = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = seq
a.sources.r1.batchSize = 50
a.sources.r1.totalEvents = 20000
a.sources.r1.channels = c1
a.channels.c1.type = file
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
a.sinks.k1.type = avro
a.sinks.k1.hostname = down
a.sinks.k1.port = 4545
a.sinks.k1.batch-size = 40
a.sinks.k1.request-timeout = 2000
a.sinks.k1.channel = c1
`

const hopDownstream = `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = avro
a.sources.r1.bind = 0.0.0.0
a.sources.r1.port = 4545
a.sources.r1.channels = c1
a.channels.c1.type = %s
a.channels.c1.checkpointDir = /flume/cp
a.channels.c1.dataDirs = /flume/data
a.channels.c1.transactionCapacity = 25
a.sinks.k1.type = logger
a.sinks.k1.batchSize = 20
a.sinks.k1.channel = c1
`

// TestAvroHopDownstreamCrashes chains two agents, seq -> file channel ->
// avro sink -> avro source -> file channel -> logger, and kills and
// restarts the downstream agent again and again (process kills and power
// losses): every event the upstream channel committed reaches the
// downstream logger at least once, since the downstream acknowledges a
// batch only after its file channel committed it and the upstream commits
// its take only after the acknowledgement. Batches of 40 arrive at a
// channel whose transactions hold 25, so the source commits each in two.
func TestAvroHopDownstreamCrashes(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		mw := newMultiWorld(t, seed, map[string]string{"up": hopUpstream, "down": fmt.Sprintf(hopDownstream, "file")})
		for i := 0; i < 6; i++ {
			mw.run(time.Duration(10+i*7) * time.Millisecond)
			var err error
			if i%2 == 0 {
				err = mw.w.Kill("down")
			} else {
				err = mw.w.PowerLoss("down")
			}
			if err != nil {
				t.Fatal(err)
			}
			mw.run(300 * time.Millisecond)
			if err := mw.w.Restart("down"); err != nil {
				t.Fatal(err)
			}
		}
		mw.run(60 * time.Second)
		seen := map[string]int{}
		for _, b := range mw.logged["down"] {
			seen[b]++
		}
		var missing []int
		for i := 0; i < hopEvents; i++ {
			if seen[strconv.Itoa(i)] == 0 {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("seed %d: %d events lost past the hop, first %v\n%s", seed, len(missing), missing[:min(10, len(missing))], tail(mw.log.String(), 3000))
		}
		up := mw.agents["up"].Metrics()
		if up["CHANNEL.c1"]["ChannelSize"] != "0" || up["SOURCE.r1"]["EventAcceptedCount"] != strconv.Itoa(hopEvents) {
			t.Fatalf("seed %d: upstream %v", seed, up)
		}
		sink := up["SINK.k1"]
		if sink["EventDrainSuccessCount"] == "0" || sink["RollbackCount"] == "0" {
			t.Fatalf("seed %d: upstream sink never rolled back across six crashes: %v", seed, sink)
		}
		t.Logf("seed %d: %d logged for %d events, upstream sink %v", seed, len(mw.logged["down"]), hopEvents, sink)
	}
}

// TestAvroHopMemoryChannelLoses is the contrast: with a memory channel
// downstream, a crash loses what the downstream had acknowledged but not
// yet delivered.
func TestAvroHopMemoryChannelLoses(t *testing.T) {
	slow := strings.Replace(fmt.Sprintf(hopDownstream, "memory"), "a.sinks.k1.type = logger", "a.sinks.k1.type = avro\na.sinks.k1.hostname = nowhere\na.sinks.k1.port = 1", 1)
	slow = strings.Replace(slow, "a.sinks.k1.batchSize = 20", "a.sinks.k1.batch-size = 20", 1)
	slow += "a.channels.c1.capacity = 10000\n"
	mw := newMultiWorld(t, 1, map[string]string{"up": hopUpstream, "down": slow})
	mw.run(2 * time.Second)
	held := mw.agents["down"].Channel("c1").Size()
	if held == 0 {
		t.Fatalf("downstream memory channel holds nothing; the test needs it to hold events")
	}
	if err := mw.w.Kill("down"); err != nil {
		t.Fatal(err)
	}
	if err := mw.w.Restart("down"); err != nil {
		t.Fatal(err)
	}
	mw.run(5 * time.Millisecond)
	drained := mw.agents["up"].Metrics()["SINK.k1"]["EventDrainSuccessCount"]
	if got := mw.agents["down"].Channel("c1").Size(); got != 0 || drained != strconv.Itoa(held) {
		t.Fatalf("after a crash the memory channel holds %d (had %d); upstream drained %s", got, held, drained)
	}
}

// TestHopProtocolRoundTrip checks the framing, and that a truncated frame
// is refused rather than misread.
func TestHopProtocolRoundTrip(t *testing.T) {
	events := []Event{{Body: []byte("a")}, {Headers: map[string]string{"k": "v", "host": "h1"}, Body: []byte{}}}
	frame, err := encodeHopBatch(7, events)
	if err != nil {
		t.Fatal(err)
	}
	id, got, err := decodeHopBatch(frame)
	if err != nil || id != 7 || len(got) != 2 || string(got[0].Body) != "a" || !reflect.DeepEqual(got[1].Headers, events[1].Headers) {
		t.Fatalf("round trip: %d %v %v", id, got, err)
	}
	for cut := 1; cut < len(frame); cut++ {
		if _, _, err := decodeHopBatch(frame[:cut]); err == nil {
			t.Fatalf("frame cut at %d decoded", cut)
		}
	}
	id, refused, err := decodeHopAck(encodeHopAck(9, ErrChannelFull))
	if err != nil || id != 9 || refused == nil || !strings.Contains(refused.Error(), "channel full") {
		t.Fatalf("ack: %d %v %v", id, refused, err)
	}
	if id, refused, err := decodeHopAck(encodeHopAck(3, nil)); err != nil || id != 3 || refused != nil {
		t.Fatalf("ok ack: %d %v %v", id, refused, err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
