package collector

import (
	"bytes"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/world"
)

// rig is one simulated node, driven by hand: its env is the process's
// current incarnation.
type rig struct {
	w     *world.World
	env   sim.Env
	boots int
	log   *bytes.Buffer
}

const rigNode = "agent"

func newRig(seed uint64) *rig {
	r := &rig{log: &bytes.Buffer{}}
	r.w = world.New(world.Config{Seed: seed, Log: r.log})
	r.w.AddNode(rigNode, func(env sim.Env) { r.env = env; r.boots++ })
	r.advance(time.Millisecond)
	return r
}

// advance runs simulated time forward.
func (r *rig) advance(d time.Duration) { r.w.Run(r.w.Now()+d, 0) }

// settle lets syncs in flight complete.
func (r *rig) settle() { r.advance(50 * time.Millisecond) }

// crash kills the process (power: the machine) and boots it again.
func (r *rig) crash(power bool) {
	var err error
	if power {
		err = r.w.PowerLoss(rigNode)
	} else {
		err = r.w.Kill(rigNode)
	}
	if err != nil {
		panic(err)
	}
	if err := r.w.Restart(rigNode); err != nil {
		panic(err)
	}
}
