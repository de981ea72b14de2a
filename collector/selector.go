package collector

import (
	"fmt"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// channelProcessor puts a source's batches into its channels, as Flume's
// ChannelProcessor does: the selector picks each event's required and
// optional channels, every channel gets one transaction per batch, and the
// batch succeeds when every required channel committed. Fan-out is not
// atomic: when one required channel fails, the others keep what they
// committed, so a source that retries duplicates into them (Flume's known
// weak point, kept on purpose so that scenarios can show it).
type channelProcessor struct {
	env      sim.Env
	selector config.Selector
	channels []Channel // the source's channels, in configured order
	// batchMax is the largest batch every channel's transaction can hold.
	batchMax     int
	interceptors []interceptor
	// bugs are the planted bugs the agent runs with
	// (faults.BugSourceAckBeforeCommit, BugTaildirPositionBeforeCommit).
	bugs faults.Bugs
}

func newChannelProcessor(env sim.Env, sel config.Selector, channels []Channel, txCapacities []int) *channelProcessor {
	p := &channelProcessor{env: env, selector: sel, channels: channels, batchMax: txCapacities[0]}
	for _, c := range txCapacities {
		p.batchMax = min(p.batchMax, c)
	}
	return p
}

func (p *channelProcessor) indexOf(name string) int {
	for i, c := range p.channels {
		if c.Name() == name {
			return i
		}
	}
	sim.Assert(false, "selector names channel %s outside the source's channels", name)
	return -1
}

// route says, for one event, which channels must and which may take it.
func (p *channelProcessor) route(e Event) (required, optional []string) {
	switch p.selector.Type {
	case "multiplexing":
		names, ok := p.selector.Mapping[e.Headers[p.selector.Header]]
		if !ok {
			names = p.selector.Default
		}
		return names, nil
	default:
		for _, c := range p.channels {
			isOptional := false
			for _, o := range p.selector.Optional {
				isOptional = isOptional || o == c.Name()
			}
			if isOptional {
				optional = append(optional, c.Name())
			} else {
				required = append(required, c.Name())
			}
		}
		return required, optional
	}
}

// process puts events (at most batchMax) into their channels and calls
// done once every channel's commit finished: nil when every required
// channel took its events.
func (p *channelProcessor) process(events []Event, done func(error)) {
	sim.Assert(len(events) <= p.batchMax, "batch of %d beyond %d", len(events), p.batchMax)
	perChannel := make([][]Event, len(p.channels))
	required := make([]bool, len(p.channels))
	for _, e := range events {
		kept := true
		for _, ic := range p.interceptors {
			if e, kept = ic(e); !kept {
				break
			}
		}
		if !kept {
			continue // dropped by an interceptor (regex_filter)
		}
		req, opt := p.route(e)
		for _, name := range req {
			i := p.indexOf(name)
			perChannel[i], required[i] = append(perChannel[i], e), true
		}
		for _, name := range opt {
			i := p.indexOf(name)
			perChannel[i] = append(perChannel[i], e)
		}
	}
	pending := 1 // released after the loop, so done runs once, last
	var failed error
	finish := func() {
		pending--
		if pending == 0 {
			done(failed)
		}
	}
	for i, batch := range perChannel {
		if len(batch) == 0 {
			continue
		}
		pending++
		ch, isRequired := p.channels[i], required[i]
		p.commit(ch, batch, func(err error) {
			if err != nil {
				if isRequired && failed == nil {
					failed = err
				} else if !isRequired {
					p.env.Log.Logf("optional channel %s refused %d events: %v", ch.Name(), len(batch), err)
				}
			}
			finish()
		})
	}
	finish()
}

// full reports whether any of the channels has commits waiting for room.
func (p *channelProcessor) full() bool {
	for _, c := range p.channels {
		if c.Waiting() {
			return true
		}
	}
	return false
}

// relieve lets the sinks of channels with waiting commits run now; the
// sources call it from the loop when a batch could not go in at once.
func (p *channelProcessor) relieve() {
	for _, c := range p.channels {
		c.Relieve()
	}
}

func (p *channelProcessor) commit(ch Channel, batch []Event, done func(error)) {
	tx := ch.Begin()
	for _, e := range batch {
		if err := tx.Put(e); err != nil {
			tx.Rollback()
			done(fmt.Errorf("put into channel %s: %w", ch.Name(), err))
			return
		}
	}
	tx.Commit(done)
}
