package collector

import "github.com/sluice-sim/sluice/sim"

// completions joins asynchronous steps: done is called once, after every
// expected completion has come in, with the first error any reported. It
// starts expecting one completion, the caller's own, so that done cannot
// run before the caller has added every step; the caller ends with
// finish(nil).
type completions struct {
	pending int
	first   error
	done    func(error)
}

func newCompletions(done func(error)) *completions {
	return &completions{pending: 1, done: done}
}

// add expects one more completion.
func (c *completions) add() { c.pending++ }

// finish reports one completion.
func (c *completions) finish(err error) {
	sim.Assert(c.pending > 0, "completions: more finishes than steps")
	if err != nil && c.first == nil {
		c.first = err
	}
	c.pending--
	if c.pending == 0 {
		c.done(c.first)
	}
}
