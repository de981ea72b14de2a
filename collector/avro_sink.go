package collector

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// AvroSink sends batches to the next agent's avro source (the hop
// protocol of hop_protocol.go), one batch at a time, and reports a batch
// delivered only when the next agent acknowledged it, which it does after
// its own channel commit. The runner commits its take only then, so an
// event leaves this agent's channel only once it is committed in the
// next one. A batch not acknowledged within request-timeout fails and the
// connection is dropped, so that a late ack cannot be taken for a later
// batch's; a dropped connection is dialled again on the next batch.
type AvroSink struct {
	name     string
	env      sim.Env
	addr     string
	timeout  time.Duration
	conn     *avroSinkConn
	nextID   uint64
	inFlight *avroBatch
	counters *SinkCounters
	stopped  bool
}

type avroBatch struct {
	id    uint64
	done  func(error)
	timer sim.Timer
}

type avroSinkConn struct {
	sink   *AvroSink
	c      sim.Conn
	opened bool
	closed bool
}

// AvroSinkConfig is an avro sink's settings (Flume's names).
type AvroSinkConfig struct {
	Hostname string
	Port     int
	// RequestTimeout bounds connecting and waiting for a batch's ack.
	RequestTimeout time.Duration
}

func avroSinkConfig(c *config.Sink) AvroSinkConfig {
	return AvroSinkConfig{
		Hostname:       c.String("hostname"),
		Port:           int(c.Int("port")),
		RequestTimeout: time.Duration(max(c.Int("request-timeout"), c.Int("connect-timeout"))) * time.Millisecond,
	}
}

// NewAvroSink creates an avro sink; it connects on its first batch.
func NewAvroSink(name string, env sim.Env, cfg AvroSinkConfig) *AvroSink {
	return &AvroSink{name: name, env: env, addr: joinHostPort(cfg.Hostname, cfg.Port), timeout: cfg.RequestTimeout, counters: &SinkCounters{}}
}

// Name is the sink's name.
func (s *AvroSink) Name() string { return s.name }

func (s *AvroSink) setCounters(c *SinkCounters) { s.counters = c }

// Deliver sends the batch and reports when the next agent acknowledged it.
func (s *AvroSink) Deliver(events []Event, done func(error)) {
	sim.Assert(s.inFlight == nil, "avro sink %s: a batch while one is in flight", s.name)
	if s.stopped {
		done(fmt.Errorf("avro sink %s: stopped", s.name))
		return
	}
	s.nextID++
	frame, err := encodeHopBatch(s.nextID, events)
	if err != nil {
		done(fmt.Errorf("avro sink %s: %w", s.name, err))
		return
	}
	if s.conn == nil {
		s.conn = &avroSinkConn{sink: s}
		s.conn.c = s.env.Net.Dial(s.addr, sim.ConnOptions{Framing: sim.FrameLength32, MaxFrameBytes: hopFrameBytesMax}, s.conn)
	}
	b := &avroBatch{id: s.nextID, done: done}
	s.inFlight = b
	b.timer = s.env.Clock.AfterFunc(s.timeout, func() {
		s.fail(b, fmt.Errorf("avro sink %s: no ack from %s within %v", s.name, s.addr, s.timeout))
		s.dropConn()
	})
	if err := s.conn.c.Send(frame); err != nil {
		s.fail(b, fmt.Errorf("avro sink %s: send to %s: %w", s.name, s.addr, err))
		s.dropConn()
	}
}

// fail ends the batch in flight, if it is still b.
func (s *AvroSink) fail(b *avroBatch, err error) { s.finish(b, err) }

func (s *AvroSink) finish(b *avroBatch, err error) {
	if s.inFlight != b {
		return
	}
	s.inFlight = nil
	b.timer.Stop()
	b.done(err)
}

func (s *AvroSink) dropConn() {
	if s.conn != nil {
		s.conn.closed = true
		s.conn.c.Close()
		s.conn = nil
	}
}

// Stop closes the connection; a batch in flight fails.
func (s *AvroSink) Stop() {
	s.stopped = true
	s.dropConn()
	if b := s.inFlight; b != nil {
		s.fail(b, fmt.Errorf("avro sink %s: stopped", s.name))
	}
}

func (ac *avroSinkConn) OnOpen(sim.Conn) { ac.opened = true }

func (ac *avroSinkConn) OnFrame(_ sim.Conn, frame []byte) {
	s := ac.sink
	if ac.closed {
		return
	}
	id, refused, err := decodeHopAck(frame)
	if err != nil || s.inFlight == nil || id != s.inFlight.id {
		s.env.Log.Logf("avro sink %s: unexpected answer from %s (%v); reconnecting", s.name, s.addr, err)
		if b := s.inFlight; b != nil {
			s.fail(b, fmt.Errorf("avro sink %s: unexpected answer from %s", s.name, s.addr))
		}
		s.dropConn()
		return
	}
	s.finish(s.inFlight, refused)
}

func (ac *avroSinkConn) OnClose(_ sim.Conn, err error) {
	s := ac.sink
	if ac.closed {
		return
	}
	ac.closed = true
	if s.conn == ac {
		s.conn = nil
	}
	if !ac.opened {
		s.counters.ConnectionFailedCount++
	}
	if err == nil {
		err = errors.New("closed by the peer")
	}
	if b := s.inFlight; b != nil {
		s.fail(b, fmt.Errorf("avro sink %s: connection to %s: %w", s.name, s.addr, err))
	}
}
