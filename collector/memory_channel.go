package collector

import (
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// MemoryChannel keeps events in memory: fast, and everything in it is lost
// when the agent stops or dies.
type MemoryChannel struct {
	*channelCore
}

// MemoryChannelConfig is a memory channel's settings (Flume's names).
type MemoryChannelConfig struct {
	Capacity            int
	TransactionCapacity int
	// KeepAlive is how long a commit waits for room.
	KeepAlive time.Duration
	// ByteCapacity bounds the bodies held, less
	// ByteCapacityBufferPercentage; zero means no bound but Capacity.
	ByteCapacity                 int64
	ByteCapacityBufferPercentage int
}

// DefaultMemoryChannelConfig is Flume's defaults.
func DefaultMemoryChannelConfig() MemoryChannelConfig {
	return MemoryChannelConfig{Capacity: 100, TransactionCapacity: 100, KeepAlive: 3 * time.Second, ByteCapacityBufferPercentage: 20}
}

func memoryChannelConfig(c *config.Channel) MemoryChannelConfig {
	return MemoryChannelConfig{
		Capacity:                     int(c.Int("capacity")),
		TransactionCapacity:          int(c.Int("transactionCapacity")),
		KeepAlive:                    time.Duration(c.Int("keep-alive")) * time.Second,
		ByteCapacity:                 c.Int("byteCapacity"),
		ByteCapacityBufferPercentage: int(c.Int("byteCapacityBufferPercentage")),
	}
}

// NewMemoryChannel creates a memory channel.
func NewMemoryChannel(name string, env sim.Env, cfg MemoryChannelConfig) *MemoryChannel {
	bytes := cfg.ByteCapacity * int64(100-cfg.ByteCapacityBufferPercentage) / 100
	if cfg.ByteCapacity > 0 && bytes < 1 {
		bytes = 1
	}
	m := &MemoryChannel{}
	m.channelCore = newChannelCore(name, env, channelLimits{
		capacity: cfg.Capacity, txCapacity: cfg.TransactionCapacity, byteCapacity: bytes, keepAlive: cfg.KeepAlive,
	}, m)
	return m
}

// Name is the channel's name.
func (m *MemoryChannel) Name() string { return m.name }

// persist has nothing to make durable.
func (m *MemoryChannel) persist(t *Txn, done func(error)) {
	m.assignIDs(t)
	done(nil)
}

// Stop closes the channel; what it holds is gone.
func (m *MemoryChannel) Stop(done func()) {
	m.closed = true
	done()
}
