package counter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/osenv"
)

// TestRealSocketsAndFiles runs the same server and client actors the
// simulation runs, on real TCP and real files: the client's acknowledged
// increments must all be in the log after the server is stopped and a new
// server recovers from its directory.
func TestRealSocketsAndFiles(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	startNode(t, ctx, "server", dir, StartServer(ServerConfig{Listen: addr}, nil))
	results := &Results{}
	clientNode := startNode(t, ctx, "client", t.TempDir(),
		StartClient(ClientConfig{Server: addr, Index: 1, Increments: 500, Pace: time.Millisecond}, results))

	deadline := time.Now().Add(20 * time.Second)
	for {
		var acked int
		clientNode.Call(func() { acked = len(results.Acked) })
		if acked == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 500 increments acknowledged in 20 s", acked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var acked []uint64
	clientNode.Call(func() { acked = append(acked, results.Acked...) })
	cancel()

	// A fresh node over the same directory recovers what the first wrote.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var recovered *Server
	node2 := startNode(t, ctx2, "server", dir, StartServer(ServerConfig{Listen: freeAddr(t)}, func(s *Server) { recovered = s }))
	deadline = time.Now().Add(10 * time.Second)
	for {
		var ready bool
		node2.Call(func() { ready = recovered != nil && recovered.ready })
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted server did not recover in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var ids []uint64
	var count uint64
	var err error
	node2.Call(func() {
		ids, err = RecoverIDs(node2.Env().FS)
		count = recovered.Count()
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != uint64(len(ids)) {
		t.Fatalf("recovered server counts %d, its log holds %d", count, len(ids))
	}
	have := map[uint64]bool{}
	for _, id := range ids {
		have[id] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acknowledged increment %d missing after restart", id)
		}
	}
	if len(ids) != len(have) {
		t.Fatalf("log holds %d records for %d ids: a retry was applied twice", len(ids), len(have))
	}
}

func startNode(t *testing.T, ctx context.Context, name, dir string, start sim.Start) *osenv.Node {
	t.Helper()
	n, err := osenv.NewNode(osenv.Options{Name: name, DataDir: dir, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	go n.Run(ctx)
	n.Start(start)
	return n
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
