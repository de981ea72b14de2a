package simnet

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
)

type packetLog struct {
	seqs  []int
	froms []string
}

func (w *testWorld) listenPacket(host, addr string) (sim.PacketConn, *packetLog) {
	w.t.Helper()
	log := &packetLog{}
	pc, err := w.net(host).ListenPacket(addr, func(from string, p []byte) {
		log.seqs = append(log.seqs, int(binary.BigEndian.Uint32(p)))
		log.froms = append(log.froms, from)
	})
	if err != nil {
		w.t.Fatalf("listen packet %s on %s: %v", addr, host, err)
	}
	return pc, log
}

func sendDatagrams(t *testing.T, w *testWorld, pc sim.PacketConn, to string, total, batch int) {
	t.Helper()
	buf := make([]byte, 64)
	for i := 0; i < total; i++ {
		binary.BigEndian.PutUint32(buf, uint32(i))
		if err := pc.SendTo(to, buf); err != nil {
			t.Fatal(err)
		}
		if (i+1)%batch == 0 {
			w.run(100 * time.Millisecond)
		}
	}
	w.run(time.Second)
}

func TestDatagramLossDuplicationReorder(t *testing.T) {
	const total = 20000
	const dropRate, dupRate = 0.1, 0.05
	cfg := Config{Link: LinkConfig{
		Latency:  sched.Latency{Base: time.Millisecond, Jitter: time.Millisecond},
		DropRate: dropRate, DupRate: dupRate,
	}}
	w := newTestWorld(t, 11, cfg, "a", "b")
	_, log := w.listenPacket("b", ":5140")
	pc, _ := w.listenPacket("a", ":0")
	if pc.LocalAddr() != "a:32768" {
		t.Fatalf("ephemeral packet port %s", pc.LocalAddr())
	}
	sendDatagrams(t, w, pc, "b:5140", total, 1000)

	s := w.nw.Stats()
	if s.DatagramsSent != total || s.DatagramsDelivered != uint64(len(log.seqs)) {
		t.Fatalf("stats %+v, log %d", s, len(log.seqs))
	}
	// Expected counts, with a margin of about five standard deviations.
	within := func(name string, got, want, margin float64) {
		if got < want-margin || got > want+margin {
			t.Errorf("%s: %v, want %v±%v", name, got, want, margin)
		}
	}
	within("dropped", float64(s.DatagramsDropped), total*dropRate, 220)
	within("duplicated", float64(s.DatagramsDuplicated), total*(1-dropRate)*dupRate, 160)
	seen := make(map[int]int)
	inversions := 0
	for i, seq := range log.seqs {
		seen[seq]++
		if i > 0 && seq < log.seqs[i-1] {
			inversions++
		}
		if log.froms[i] != "a:32768" {
			t.Fatalf("datagram from %s", log.froms[i])
		}
	}
	dups := 0
	for _, n := range seen {
		if n > 2 {
			t.Fatalf("datagram delivered %d times", n)
		}
		dups += n - 1
	}
	if uint64(dups) != s.DatagramsDuplicated || len(seen) != total-int(s.DatagramsDropped) {
		t.Fatalf("distinct %d dups %d; stats dropped %d duplicated %d", len(seen), dups, s.DatagramsDropped, s.DatagramsDuplicated)
	}
	if inversions < total/10 {
		t.Fatalf("only %d reorderings with a jitter as large as the base latency", inversions)
	}
}

func TestDatagramsWithoutJitterKeepOrder(t *testing.T) {
	w := newTestWorld(t, 11, fixed, "a", "b")
	_, log := w.listenPacket("b", ":5140")
	pc, _ := w.listenPacket("a", ":0")
	sendDatagrams(t, w, pc, "b:5140", 3000, 1000)
	if len(log.seqs) != 3000 {
		t.Fatalf("delivered %d of 3000 on a lossless link", len(log.seqs))
	}
	for i, seq := range log.seqs {
		if seq != i {
			t.Fatalf("datagram %d is #%d", i, seq)
		}
	}
}

func TestDatagramDrops(t *testing.T) {
	w := newTestWorld(t, 1, fixed, "a", "b")
	_, log := w.listenPacket("b", ":5140")
	pc, _ := w.listenPacket("a", ":0")
	buf := make([]byte, 4)
	send := func(to string) {
		t.Helper()
		if err := pc.SendTo(to, buf); err != nil {
			t.Fatal(err)
		}
		w.run(time.Second)
	}
	w.nw.Block("a", "b")
	send("b:5140")
	w.nw.Unblock("a", "b")
	send("b:5141") // unbound
	// Blocked while in flight.
	if err := pc.SendTo("b:5140", buf); err != nil {
		t.Fatal(err)
	}
	w.nw.Block("a", "b")
	w.run(time.Second)
	w.nw.Unblock("a", "b")
	w.crash("b", true)
	send("b:5140") // host down
	if len(log.seqs) != 0 || w.nw.Stats().DatagramsDropped != 4 {
		t.Fatalf("delivered %d, dropped %d; want 0 and 4", len(log.seqs), w.nw.Stats().DatagramsDropped)
	}
	if err := pc.SendTo("nohost:1", buf); err == nil {
		t.Fatal("send to an unknown host succeeded")
	}
	if err := pc.SendTo("b:1", make([]byte, datagramBytesMax+1)); err == nil {
		t.Fatal("oversized datagram accepted")
	}
	if _, err := w.net("a").ListenPacket(pc.LocalAddr(), func(string, []byte) {}); !errors.Is(err, sim.ErrAddrInUse) {
		t.Fatalf("second bind: %v, want ErrAddrInUse", err)
	}
	pc.Close()
	if err := pc.SendTo("b:5140", buf); !errors.Is(err, sim.ErrClosed) {
		t.Fatalf("send on closed port: %v, want ErrClosed", err)
	}
}
