package collector

import (
	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// AvroSource receives batches from another agent's avro sink (the hop
// protocol of hop_protocol.go) and answers each only after every one of
// its events is committed to the channels, so an acknowledged batch is in
// this agent's channels and an unacknowledged one is retried by the
// sender: a crash between the commit and the ack duplicates, never loses.
// A batch larger than the channels' transactionCapacity is committed in
// several transactions and acknowledged when all of them are.
type AvroSource struct {
	tcpSource
	proc *channelProcessor
}

// avroBatchesInFlightMax bounds the batches one connection may have
// waiting for their commits; a sender sends one at a time, so one that
// sends more is misbehaving and is cut off.
const avroBatchesInFlightMax = 16

type avroConn struct {
	sourceConn
	src      *AvroSource
	inFlight int
}

func newAvroSource(name string, env sim.Env, c *config.Source, proc *channelProcessor) *AvroSource {
	s := &AvroSource{proc: proc}
	s.init("avro source", name, env, joinHostPort(c.String("bind"), int(c.Int("port"))))
	return s
}

// Start listens on bind:port.
func (s *AvroSource) Start() error {
	return s.listen(sim.ConnOptions{Framing: sim.FrameLength32, MaxFrameBytes: hopFrameBytesMax}, s.accept)
}

// Stop closes the port and the connections; batches being committed
// finish, but their acks are not sent, so the senders retry them.
func (s *AvroSource) Stop() { s.tcpSource.Stop() }

func (s *AvroSource) accept(c sim.Conn) sim.ConnHandler {
	ac := &avroConn{src: s}
	s.track(&ac.sourceConn, c)
	return ac
}

func (ac *avroConn) OnOpen(sim.Conn) {}

func (ac *avroConn) OnClose(sim.Conn, error) { ac.forget() }

func (ac *avroConn) OnFrame(_ sim.Conn, frame []byte) {
	s := ac.src
	if ac.closed || s.stopped {
		return
	}
	id, events, err := decodeHopBatch(frame)
	if err != nil {
		s.env.Log.Logf("avro source %s: %s: %v; closing the connection", s.name, ac.c.RemoteAddr(), err)
		ac.close()
		return
	}
	if ac.inFlight >= avroBatchesInFlightMax {
		s.env.Log.Logf("avro source %s: %s has %d batches in flight; closing the connection", s.name, ac.c.RemoteAddr(), ac.inFlight)
		ac.close()
		return
	}
	ac.inFlight++
	s.counters.AppendBatchReceivedCount++
	s.counters.EventReceivedCount += int64(len(events))
	ackedEarly := s.proc.bugs.On(faults.BugSourceAckBeforeCommit)
	if ackedEarly {
		// The planted bug: the sender hears success before the commit,
		// so it takes the batch off its channel.
		if err := ac.c.Send(encodeHopAck(id, nil)); err != nil {
			ac.close()
		}
	}
	commitInChunks(s.env, s.proc, events, func(err error) {
		ac.inFlight--
		if err != nil {
			s.counters.ChannelWriteFail++
			s.env.Log.Logf("avro source %s: batch of %d events not accepted: %v", s.name, len(events), err)
		} else {
			s.counters.AppendBatchAcceptedCount++
			s.counters.EventAcceptedCount += int64(len(events))
		}
		if !ac.closed && !ackedEarly {
			if err := ac.c.Send(encodeHopAck(id, err)); err != nil {
				ac.close()
			}
		}
	})
}

// commitInChunks puts events into a source's channels in transactions of
// at most the processor's batch limit, in order, stopping at the first
// that fails. The next chunk starts from the loop, since a commit may
// complete inside another transaction's commit.
func commitInChunks(env sim.Env, proc *channelProcessor, events []Event, done func(error)) {
	if len(events) == 0 {
		done(nil)
		return
	}
	n := min(len(events), proc.batchMax)
	proc.process(events[:n], func(err error) {
		if err != nil || n == len(events) {
			done(err)
			return
		}
		env.Clock.AfterFunc(0, func() { commitInChunks(env, proc, events[n:], done) })
	})
	if proc.full() {
		proc.relieve()
	}
}
