package collector

import "github.com/sluice-sim/sluice/sim"

// eventPump feeds the events of sources that cannot tell their senders to
// wait (syslog, UDP) into their channels, a batch at a time: what the
// channels refuse is dropped and counted, as Flume's syslog and netcatudp
// sources drop it, and what arrives while the queue is full is dropped
// too, since the seams offer no way to stop reading a socket.
type eventPump struct {
	env      sim.Env
	what     string
	proc     *channelProcessor
	counters *SourceCounters
	queue    []Event
	busy     bool
}

// eventPumpQueueMax bounds the events waiting for a channel.
const eventPumpQueueMax = 1 << 16

// push queues events and starts a batch when none is in flight.
func (p *eventPump) push(events ...Event) {
	p.counters.EventReceivedCount += int64(len(events))
	room := eventPumpQueueMax - len(p.queue)
	if len(events) > room {
		p.counters.EventReadFail += int64(len(events) - room)
		p.env.Log.Logf("%s: %d events dropped: %d already wait for the channel", p.what, len(events)-room, len(p.queue))
		events = events[:room]
	}
	p.queue = append(p.queue, events...)
	p.flush()
}

func (p *eventPump) flush() {
	if p.busy || len(p.queue) == 0 {
		return
	}
	n := min(len(p.queue), p.proc.batchMax)
	batch := p.queue[:n:n]
	p.queue = p.queue[n:]
	if len(p.queue) == 0 {
		p.queue = nil
	}
	p.busy = true
	p.counters.AppendBatchReceivedCount++
	p.proc.process(batch, func(err error) {
		p.busy = false
		if err != nil {
			p.counters.ChannelWriteFail += int64(n)
			p.env.Log.Logf("%s: %d events dropped: %v", p.what, n, err)
		} else {
			p.counters.EventAcceptedCount += int64(n)
			p.counters.AppendBatchAcceptedCount++
		}
		// From the loop: the commit may complete inside another.
		p.env.Clock.AfterFunc(0, p.flush)
	})
	if p.busy && p.proc.full() {
		p.proc.relieve()
	}
}
