package controller

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker/metadata"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// realNode is a controller on real sockets and files.
type realNode struct {
	node   *osenv.Node
	cancel context.CancelFunc
	ctrl   *Controller
	dir    string
}

// TestRealQuorum runs three controllers on loopback sockets and real
// files: they elect a leader and commit a registration; the active one is
// stopped and another takes over; restarted from its directory, the
// stopped one catches up. The bounds are generous: this proves the code
// runs on the real seams, not how fast.
func TestRealQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets and fsync; run without -short")
	}
	const waitMax = 20 * time.Second
	var voters []Voter
	for i := 1; i <= 3; i++ {
		voters = append(voters, Voter{ID: uint64(i), Addr: freeLoopbackAddr(t)})
	}
	nodes := make([]*realNode, 3)
	start := func(i int) {
		if nodes[i] == nil {
			nodes[i] = &realNode{dir: t.TempDir()}
		}
		rn := nodes[i]
		n, err := osenv.NewNode(osenv.Options{Name: fmt.Sprintf("ctl%d", i+1), DataDir: rn.dir, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		rn.node, rn.cancel, rn.ctrl = n, cancel, nil
		go n.Run(ctx)
		cfg := DefaultConfig(voters[i].ID, voters, voters[i].Addr)
		n.Start(Process(cfg, func(c *Controller) { rn.ctrl = c }))
	}
	for i := range nodes {
		start(i)
	}
	t.Cleanup(func() {
		for _, rn := range nodes {
			rn.cancel()
		}
	})
	active := func() int {
		for i, rn := range nodes {
			found := false
			rn.node.Call(func() { found = rn.ctrl != nil && rn.ctrl.Active() })
			if found {
				return i
			}
		}
		return -1
	}
	waitFor(t, waitMax, "an active controller", func() bool { return active() >= 0 })

	client, stopClient := realClient(t)
	defer stopClient()
	register := func(id int32) {
		t.Helper()
		done := make(chan error, 1)
		client.Post(func() {
			NewClient(client.Env(), addrsOf(voters)).Do(Request{Op: OpRegister, BrokerID: id, Addr: "b", Incarnation: "1"},
				func(r Response, err error) {
					if err == nil && r.Code != metadata.CodeNone {
						err = fmt.Errorf("register: %v", r.Code)
					}
					done <- err
				})
		})
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("broker %d: %v", id, err)
			}
		case <-time.After(waitMax):
			t.Fatalf("broker %d: no answer in %v", id, waitMax)
		}
	}
	register(1)

	stopped := active()
	nodes[stopped].cancel()
	waitFor(t, waitMax, "another active controller", func() bool {
		i := active()
		return i >= 0 && i != stopped
	})
	register(2)

	start(stopped)
	waitFor(t, waitMax, "the restarted controller to catch up", func() bool {
		has := false
		nodes[stopped].node.Call(func() {
			c := nodes[stopped].ctrl
			has = c != nil && c.State().Brokers[1] != nil && c.State().Brokers[2] != nil
		})
		return has
	})
}

func realClient(t *testing.T) (*osenv.Node, func()) {
	n, err := osenv.NewNode(osenv.Options{Name: "client", DataDir: t.TempDir(), Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go n.Run(ctx)
	return n, cancel
}

func addrsOf(voters []Voter) []string {
	var out []string
	for _, v := range voters {
		out = append(out, v.Addr)
	}
	return out
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
