package controller

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// Voter is a member of the quorum.
type Voter struct {
	ID   uint64
	Addr string
}

// Config configures a controller.
type Config struct {
	// ID is this controller's raft id (1 and up); it must be among Voters.
	ID     uint64
	Voters []Voter
	// Listen is the address brokers and the other controllers reach this
	// controller on.
	Listen string
	// Dir is the directory of the raft log on the node's disk.
	Dir string
	// TickInterval paces raft's heartbeats (one raft tick each).
	TickInterval time.Duration
	// ElectionTimeout is the shortest leader silence that starts an
	// election.
	ElectionTimeout time.Duration
	// SessionTimeout fences a broker that has not heartbeaten for it.
	SessionTimeout time.Duration
	// SnapshotEntries is how many applied entries past the last snapshot
	// trigger the next.
	SnapshotEntries uint64
	// PreferredElectionInterval is how often the active controller moves
	// leaderships back to preferred replicas.
	PreferredElectionInterval time.Duration
	Bugs                      faults.Bugs
	// OnApply, when set, sees every committed entry this controller
	// applies, in order (tests check the replicas agree).
	OnApply func(index, term uint64, data []byte)
	// OnLead, when set, is told each time this controller becomes leader,
	// with its term (an Oracle checks no term has two).
	OnLead func(term uint64)
}

// DefaultConfig fills in the timings.
func DefaultConfig(id uint64, voters []Voter, listen string) Config {
	return Config{
		ID: id, Voters: voters, Listen: listen, Dir: "controller",
		TickInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		SessionTimeout: 2 * time.Second, SnapshotEntries: 1000,
		PreferredElectionInterval: time.Second,
	}
}

// Limits on the work one controller takes on.
const (
	msgBytesMax               = 1 << 20
	inflightMsgsMax           = 256
	uncommittedBytesMax       = 64 << 20
	pendingRequestsMax        = 4096
	fetchResponseBytesMax     = 1 << 20
	retryAfterFailureDuration = 200 * time.Millisecond
)

func (cfg Config) check() error {
	switch {
	case cfg.ID == 0:
		return fmt.Errorf("controller id 0: ids start at 1")
	case len(cfg.Voters) == 0:
		return fmt.Errorf("controller %d: no voters", cfg.ID)
	case cfg.TickInterval <= 0 || cfg.ElectionTimeout <= cfg.TickInterval:
		return fmt.Errorf("controller %d: election timeout %v must exceed the tick %v", cfg.ID, cfg.ElectionTimeout, cfg.TickInterval)
	case cfg.SessionTimeout <= 0 || cfg.SnapshotEntries == 0 || cfg.PreferredElectionInterval <= 0:
		return fmt.Errorf("controller %d: session timeout, snapshot entries and preferred-election interval must be positive", cfg.ID)
	}
	seen := map[uint64]bool{}
	for _, v := range cfg.Voters {
		if v.ID == 0 || seen[v.ID] {
			return fmt.Errorf("controller %d: voter id %d is zero or listed twice", cfg.ID, v.ID)
		}
		seen[v.ID] = true
	}
	if !seen[cfg.ID] {
		return fmt.Errorf("controller %d is not among the voters", cfg.ID)
	}
	return nil
}

func voterIDs(voters []Voter) []uint64 {
	ids := make([]uint64, len(voters))
	for i, v := range voters {
		ids[i] = v.ID
	}
	return ids
}

func (c *Controller) raftConfig() *raft.Config {
	return &raft.Config{
		ID:                        c.cfg.ID,
		ElectionTick:              electionTickUnreachable,
		HeartbeatTick:             1,
		Storage:                   c.store,
		Applied:                   c.applied,
		MaxSizePerMsg:             msgBytesMax,
		MaxInflightMsgs:           inflightMsgsMax,
		MaxUncommittedEntriesSize: uncommittedBytesMax,
		PreVote:                   true,
		CheckQuorum:               false,
		DisableProposalForwarding: true,
		Logger:                    raftLogger{c.env.Log, c.cfg.ID},
	}
}

// raftLogger passes raft's warnings and errors to the node's log.
type raftLogger struct {
	log sim.Logger
	id  uint64
}

func (l raftLogger) Debug(...any)          {}
func (l raftLogger) Debugf(string, ...any) {}
func (l raftLogger) Info(...any)           {}
func (l raftLogger) Infof(string, ...any)  {}
func (l raftLogger) Warning(v ...any)      { l.log.Logf("raft %d: %s", l.id, fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.log.Logf("raft %d: %s", l.id, fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any) { l.log.Logf("raft %d: %s", l.id, fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) {
	l.log.Logf("raft %d: %s", l.id, fmt.Sprintf(format, v...))
}
func (l raftLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (l raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
