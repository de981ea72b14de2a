package kafka

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/checkers"
	"github.com/sluice-sim/sluice/checkers/history"
	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
	"github.com/twmb/franz-go/pkg/kfake"
)

// testTopic is the topic every kfake cluster is seeded with.
const testTopic = "t"

// testPartitions is its partition count.
const testPartitions = 4

// startKfake runs a franz-go fake cluster on loopback TCP.
func startKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(testPartitions, testTopic)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	spreadLeaders(t, c)
	return c
}

// spreadLeaders places the test topic's partitions on the brokers in turn:
// kfake picks each leader at random, so all four could land on one broker
// (one time in 27 with three) and a test about several leaders would not
// have them.
func spreadLeaders(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	brokers := int32(len(c.ListenAddrs()))
	for p := range int32(testPartitions) {
		if c.LeaderFor(testTopic, p) < 0 {
			return // a test that seeds other topics
		}
		if err := c.MoveTopicPartition(testTopic, p, p%brokers); err != nil {
			t.Fatalf("kfake: move %s/%d: %v", testTopic, p, err)
		}
	}
}

// realWorld is a real node running the actors, with the history they record.
type realWorld struct {
	t    *testing.T
	node *osenv.Node
	hist *history.Log
}

func newWorld(t *testing.T) *realWorld {
	t.Helper()
	var out io.Writer = io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	n, err := osenv.NewNode(osenv.Options{Name: "client", DataDir: t.TempDir(), Seed: 42,
		Log: log.New(out, "", log.Lmicroseconds)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		n.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	start := time.Now()
	return &realWorld{t: t, node: n, hist: &history.Log{Now: func() int64 { return int64(time.Since(start)) }}}
}

// loopFailure carries a fatal test failure out of the node's loop, where
// t.Fatal must not be called.
type loopFailure struct{ msg string }

// do runs f on the node's loop and waits for it. Inside f, fail with
// w.fatal or w.fatalf; the test stops once do returns.
func (w *realWorld) do(f func()) {
	w.t.Helper()
	var failure *loopFailure
	w.node.Call(func() {
		defer func() {
			if r := recover(); r != nil {
				lf, ok := r.(loopFailure)
				if !ok {
					panic(r)
				}
				failure = &lf
			}
		}()
		f()
	})
	if failure != nil {
		w.t.Fatal(failure.msg)
	}
}

// fatal stops f inside do.
func (w *realWorld) fatal(args ...any) { panic(loopFailure{fmt.Sprint(args...)}) }

// fatalf stops f inside do.
func (w *realWorld) fatalf(format string, args ...any) {
	panic(loopFailure{fmt.Sprintf(format, args...)})
}

// env is the node's environment, for actors created inside do.
func (w *realWorld) env() sim.Env { return w.node.Env() }

// waitFor polls cond on the loop until it holds or the timeout passes.
func (w *realWorld) waitFor(what string, timeout time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		w.do(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// history is a copy of the ops recorded so far.
func (w *realWorld) history() history.History {
	var h history.History
	w.do(func() { h = append(h, w.hist.Ops...) })
	return h
}

// checkHistory runs the checkers and fails the test on any anomaly.
func checkHistory(t *testing.T, h history.History, opts checkers.Options) {
	t.Helper()
	opts.LinearSkip = true
	if v := checkers.CheckHistory(h, opts); !v.Valid {
		t.Fatalf("malformed history: %+v", v.Anomalies)
	}
	if v := checkers.CheckKafka(h, opts); !v.Valid {
		t.Fatalf("kafka anomalies: %+v", v.Anomalies)
	}
}

// completedOnce checks every send and poll invoke in h has exactly one
// completion, by the same process, and that send values are unique.
func completedOnce(t *testing.T, h history.History) (outcomes map[history.Type]int) {
	t.Helper()
	outcomes = map[history.Type]int{}
	pending := map[string]int{}
	invoked := map[string]bool{}
	polls := map[int]bool{}
	for _, op := range h {
		switch op.F {
		case history.Send:
			v := op.Record.Value
			if op.Type == history.Invoke {
				if invoked[v] {
					t.Fatalf("value %q sent twice", v)
				}
				invoked[v] = true
				pending[v] = op.Process
				continue
			}
			p, ok := pending[v]
			if !ok || p != op.Process {
				t.Fatalf("completion %+v without its invoke", op)
			}
			delete(pending, v)
			outcomes[op.Type]++
		case history.Poll:
			if op.Type == history.Invoke {
				if polls[op.Process] {
					t.Fatalf("process %d polls twice at once", op.Process)
				}
				polls[op.Process] = true
				continue
			}
			if !polls[op.Process] {
				t.Fatalf("poll completion %+v without its invoke", op)
			}
			delete(polls, op.Process)
		}
	}
	if len(pending) != 0 {
		t.Fatalf("%d sends never completed", len(pending))
	}
	return outcomes
}
