package main

import (
	"bytes"
	"context"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests attack a real broker process the way hostile or broken
// clients do and assert that its memory and connection counts stay
// within the limits it was given, while a well-behaved client is served.

// rssBytes reads the resident set of a process from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	rss, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

func readRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status (the process is gone)", pid)
}

// rssSampler records the largest resident set seen until stopped.
type rssSampler struct {
	mu   sync.Mutex
	peak int64
	done chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(t *testing.T, pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			rss, err := readRSS(pid)
			if err != nil {
				return // the process exited; the test reports why
			}
			s.mu.Lock()
			s.peak = max(s.peak, rss)
			s.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// requestFrame frames a request with a v1 (non-flexible) header.
func requestFrame(req kmsg.Request, corr int32) []byte {
	body := []byte{}
	body = binenc.BigEndian.AppendUint16(body, uint16(req.Key()))
	body = binenc.BigEndian.AppendUint16(body, uint16(req.GetVersion()))
	body = binenc.BigEndian.AppendUint32(body, uint32(corr))
	body = binenc.BigEndian.AppendUint16(body, uint16(len("hostile")))
	body = append(body, "hostile"...)
	body = req.AppendTo(body)
	return append(binenc.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// hugeFetch asks for the same partition many times over with 60 MB limits,
// so that one request could be answered with up to fetch.max.bytes.
func hugeFetch(topic string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxBytes = 60 << 20
	req.MinBytes = 1
	req.MaxWaitMillis = 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for range 64 {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = 0, 60<<20, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func produceBulk(t *testing.T, cl *kgo.Client, topic string, records, valueBytes int) {
	t.Helper()
	value := bytes.Repeat([]byte("x"), valueBytes)
	var rs []*kgo.Record
	for i := 0; i < records; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Value: value})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", records, topic, err)
	}
}

// roundTrip produces one record with a fresh client and reads it back.
func roundTrip(t *testing.T, addr, topic, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("normal client: produce: %v", err)
	}
	for ctx.Err() == nil {
		found := false
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == value })
		if found {
			return
		}
	}
	t.Fatalf("normal client: %q not read back in 20 s", value)
}

// 100 connections each send 4 fetches that could be answered with 55 MiB
// and never read. The broker answers within its send queue budget, resets
// the stalled connections after the write timeout, and a normal client
// produces and consumes meanwhile; the resident set stays under the bound.
func TestNonReadingFetchersStayWithinMemoryBudget(t *testing.T) {
	const budget, fetchMax = 64 << 20, 8 << 20
	b := startRealBroker(t, t.TempDir(), "", "--flush", "none", "--fetch-max-bytes", strconv.Itoa(fetchMax),
		"--send-queue-bytes-max", strconv.Itoa(budget), "--write-timeout", "1s")
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ProducerBatchMaxBytes(900<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "big", 1)
	createTopic(t, cl, "normal", 1)
	produceBulk(t, cl, "big", 64, 64<<10) // 4 MiB
	before := rssBytes(t, b.cmd.Process.Pid)
	rss := sampleRSS(t, b.cmd.Process.Pid)

	const conns, fetchesEach = 100, 4
	var hostile []net.Conn
	for i := range conns {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatalf("hostile connection %d: %v", i, err)
		}
		c.(*net.TCPConn).SetReadBuffer(4 << 10)
		defer c.Close()
		for f := range fetchesEach {
			if _, err := c.Write(requestFrame(hugeFetch("big"), int32(f))); err != nil {
				t.Fatalf("hostile connection %d: write fetch: %v", i, err)
			}
		}
		hostile = append(hostile, c)
	}
	start := time.Now()
	roundTrip(t, b.addr, "normal", "served while others hog")
	t.Logf("normal client served in %v while the hogs held their answers", time.Since(start))
	time.Sleep(1500 * time.Millisecond) // past the write timeout
	roundTrip(t, b.addr, "normal", "served after the hogs were cut")
	peak := rss.stop()
	// The budget bounds the answers held and one answer being built is
	// held twice (read, then framed); the garbage collector lets the heap
	// reach twice what is live, over the process's own baseline. Without
	// the budget the same attack held gigabytes.
	limit := before + 2*budget + 4*fetchMax + 32<<20
	t.Logf("broker RSS %d MiB before, peak %d MiB while %d connections fetched without reading (limit %d MiB)",
		before>>20, peak>>20, conns, limit>>20)
	if peak > limit {
		t.Fatalf("broker RSS peaked at %d MiB, over %d MiB (budget %d MiB):\n%s", peak>>20, limit>>20, budget>>20, tail(b.log.String()))
	}
	// A reset connection drains what the kernel still holds for it and
	// then ends; one still open times out. Draining takes time, so the
	// connections are drained side by side, each with its own deadline.
	var cutCount atomic.Int32
	var drained sync.WaitGroup
	for _, c := range hostile {
		drained.Add(1)
		go func() {
			defer drained.Done()
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.Copy(io.Discard, c); err == nil || !isTimeout(err) {
				cutCount.Add(1)
			}
		}()
	}
	drained.Wait()
	cut, checked := int(cutCount.Load()), len(hostile)
	if cut == 0 {
		t.Fatalf("no stalled connection was reset by the write timeout:\n%s", tail(b.log.String()))
	}
	t.Logf("%d of the %d stalled connections checked were reset", cut, checked)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// dialFrom opens a connection to addr from a chosen loopback address, so
// that one test can play several client hosts.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// 5,000 idle connections from one host: those past max.connections.per.ip
// are closed at once, and a client from another host is served.
func TestIdleConnectionFloodIsCappedPerHost(t *testing.T) {
	const perIPMax, flood = 1000, 5000
	b := startRealBroker(t, t.TempDir(), "", "--max-connections-per-ip", strconv.Itoa(perIPMax))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := dialFrom("127.0.0.2", b.addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// A closed connection reads EOF (or a reset) at once and an open one
	// times out. A connection the broker has not accepted yet also times
	// out, so the count is taken again, over those still open, until it is
	// within the cap or the broker has had ample time to catch up.
	stillOpen := conns
	for deadline := time.Now().Add(15 * time.Second); ; {
		time.Sleep(500 * time.Millisecond)
		var next []net.Conn
		for _, c := range stillOpen {
			c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
				next = append(next, c)
			}
		}
		stillOpen = next
		if len(stillOpen) <= perIPMax || time.Now().After(deadline) {
			break
		}
	}
	open := len(stillOpen)
	t.Logf("%d of %d idle connections from one host left open (cap %d)", open, flood, perIPMax)
	if open > perIPMax {
		t.Fatalf("%d connections from one host stayed open, over the cap of %d", open, perIPMax)
	}
	if open < perIPMax/2 {
		t.Fatalf("only %d connections stayed open; the cap of %d refused more than it should", open, perIPMax)
	}
	if !strings.Contains(b.log.String(), "refused connection from 127.0.0.2") {
		t.Fatalf("no log line reports the refused connections:\n%s", tail(b.log.String()))
	}
	if lines := strings.Count(b.log.String(), "refused connection"); lines > 20 {
		t.Fatalf("%d log lines for refused connections: the log is not rate-limited", lines)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, "after-flood", 1)
	roundTrip(t, b.addr, "after-flood", "served beside 1000 idle connections")
}

// A connection with nothing to say for connections.max.idle is closed.
func TestIdleConnectionIsClosed(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "", "--connections-max-idle", "300ms")
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if isTimeout(err) {
		t.Fatalf("an idle connection was still open after 5 s with a 300 ms idle limit")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before its 300 ms limit", took)
	}
	// The broker writes its log line after closing, so the line may follow
	// the close by a moment.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(b.log.String(), "idle for"); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says why the idle connection was closed:\n%s", tail(b.log.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Connections that announce a 100 MiB request and send nothing more cost
// the broker no more than a small buffer each.
func TestStalledFrameHeadersAllocateNothingBig(t *testing.T) {
	b := startRealBroker(t, t.TempDir(), "")
	before := rssBytes(t, b.cmd.Process.Pid)
	const conns = 200
	for i := range conns {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		header := binenc.BigEndian.AppendUint32(nil, 100<<20)
		if _, err := c.Write(append(header, 0, 1, 0, 4)); err != nil { // and 4 bytes of the body
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := rssBytes(t, b.cmd.Process.Pid)
	t.Logf("broker RSS %d MiB before, %d MiB after %d stalled 100 MiB frame headers", before>>20, after>>20, conns)
	if grown := after - before; grown > 64<<20 {
		t.Fatalf("%d stalled frame headers grew the broker by %d MiB", conns, grown>>20)
	}
	roundTrip(t, b.addr, "after-stall", "served beside stalled headers")
}
