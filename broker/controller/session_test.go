package controller

import (
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim/world"
)

// TestSessionsFenceSilentBrokers checks broker sessions against a model:
// brokers heartbeat at random gaps, and the controller must fence a broker
// exactly when a gap outlasts the session timeout. A gap shorter than the
// timeout never fences; a gap longer than the timeout plus one tick and a
// commit fences within that slack of the timeout running out; the next
// heartbeat unfences the broker again.
func TestSessionsFenceSilentBrokers(t *testing.T) {
	const (
		session = time.Second
		slack   = 100 * time.Millisecond // one 50 ms tick and the commit
	)
	rapid.Check(t, func(rt *rapid.T) {
		w := world.New(world.Config{Seed: rapid.Uint64().Draw(rt, "seed")})
		var ctl *Controller
		cfg := DefaultConfig(1, []Voter{{ID: 1, Addr: "ctl1:9093"}}, ":9093")
		cfg.SessionTimeout = session
		fences := map[int32][]time.Duration{}
		unfences := map[int32][]time.Duration{}
		cfg.OnApply = func(_, _ uint64, data []byte) {
			r, err := metadata.DecodeRecord(data)
			if err != nil {
				return
			}
			switch r.Kind {
			case metadata.KindFenceBroker:
				fences[r.BrokerID] = append(fences[r.BrokerID], w.Now())
			case metadata.KindUnfenceBroker:
				unfences[r.BrokerID] = append(unfences[r.BrokerID], w.Now())
			}
		}
		w.AddNode("ctl1", Process(cfg, func(c *Controller) { ctl = c }))
		// The model starts once the quorum of one has elected itself: its
		// election timer is drawn from the seed, and a registration
		// proposed before it leads would not commit in the 20 ms assumed.
		start := time.Duration(0)
		for start < electionWaitMax && (ctl == nil || !ctl.Active()) {
			start += 10 * time.Millisecond
			w.Run(start, 0)
		}
		if ctl == nil || !ctl.Active() {
			rt.Fatalf("the controller did not lead within %v", electionWaitMax)
		}
		beats := map[int32][]time.Duration{}
		for id := int32(1); id <= 3; id++ {
			registeredAt := start + 100*time.Millisecond
			w.At(registeredAt, func() {
				ctl.propose(metadata.Record{Kind: metadata.KindRegisterBroker, BrokerID: id, Incarnation: "1"})
			})
			at := registeredAt + 20*time.Millisecond // registration committed
			beats[id] = append(beats[id], at)
			for i := 0; i < 12; i++ {
				gap := drawGap(rt, fmt.Sprintf("gap%d.%d", id, i), session, slack)
				at += gap
				beats[id] = append(beats[id], at)
				w.At(at, func() {
					b := ctl.State().Brokers[id]
					if b == nil {
						rt.Fatalf("broker %d not registered at %v", id, w.Now())
					}
					if r := ctl.api.heartbeat(Request{BrokerID: id, BrokerEpoch: b.Epoch, MetadataOffset: math.MaxInt64}); r.Code != metadata.CodeNone {
						rt.Fatalf("heartbeat of broker %d: %v", id, r.Code)
					}
				})
			}
		}
		end := time.Duration(0)
		for _, b := range beats {
			end = max(end, b[len(b)-1])
		}
		w.Run(end+session+2*slack, 0)
		for id := int32(1); id <= 3; id++ {
			b := beats[id]
			// A broker registers fenced; its first heartbeat unfences it.
			if !anyWithin(unfences[id], b[1], b[1]+slack) || anyWithin(fences[id], b[0], b[1]) {
				rt.Fatalf("broker %d: first heartbeat at %v, unfences %v, fences %v", id, b[1], unfences[id], fences[id])
			}
			for i := 2; i < len(b); i++ {
				checkGap(rt, id, b[i-1], b[i], fences[id], unfences[id], session, slack)
			}
		}
	})
}

// drawGap draws a gap between heartbeats clearly shorter than the session
// or clearly longer than it and its slack: a gap between the two may be
// fenced or not, and its fence may land just after the heartbeat that
// ends it, where it would be taken for a fence within the next gap.
func drawGap(rt *rapid.T, label string, session, slack time.Duration) time.Duration {
	if rapid.Bool().Draw(rt, label+".long") {
		return time.Duration(rapid.Int64Range(int64(session+2*slack), int64(2500*time.Millisecond)).Draw(rt, label))
	}
	return time.Duration(rapid.Int64Range(int64(50*time.Millisecond), int64(session-slack)).Draw(rt, label))
}

// electionWaitMax bounds how long a quorum of one takes to lead.
const electionWaitMax = 10 * time.Second

// checkGap judges one gap between heartbeats prev and next against the
// fences and unfences applied.
func checkGap(rt *rapid.T, id int32, prev, next time.Duration, fences, unfences []time.Duration, session, slack time.Duration) {
	var in []time.Duration
	for _, f := range fences {
		if f > prev && f <= next {
			in = append(in, f)
		}
	}
	gap := next - prev
	switch {
	case gap < session && len(in) > 0:
		rt.Fatalf("broker %d fenced at %v within a %v gap (%v..%v)", id, in[0], gap, prev, next)
	case gap > session+slack:
		if len(in) != 1 || in[0] < prev+session || in[0] > prev+session+slack {
			rt.Fatalf("broker %d silent %v..%v: fences %v, want one within %v of %v", id, prev, next, in, slack, prev+session)
		}
		if !anyWithin(unfences, next, next+slack) {
			rt.Fatalf("broker %d heartbeat at %v after being fenced: not unfenced (unfences %v)", id, next, unfences)
		}
	}
}

// anyWithin reports whether a time falls in [from, to].
func anyWithin(times []time.Duration, from, to time.Duration) bool {
	for _, at := range times {
		if at >= from && at <= to {
			return true
		}
	}
	return false
}
