package simdisk

import (
	"fmt"
	"time"

	"github.com/sluice-sim/sluice/sim/sched"
)

// CrashMode is what a power loss does to one file's unsynced data. The
// exact rules are in the package comment.
type CrashMode uint8

// Crash modes.
const (
	// DropUnsynced keeps only the durable content and size.
	DropUnsynced CrashMode = iota
	// KeepUnsynced keeps the current content and size, as if the page
	// cache had been written back just in time.
	KeepUnsynced
	// KeepPrefix cuts the file at a random size between the durable and
	// the current size: durable bytes below the durable size, current
	// bytes above it. It is how an appended log usually tears.
	KeepPrefix
	// TearSectors keeps each dirty sector independently in its durable or
	// its current version, and either the durable or the current size.
	TearSectors
	crashModeCount
)

var crashModeNames = [crashModeCount]string{"drop-unsynced", "keep-unsynced", "keep-prefix", "tear-sectors"}

func (m CrashMode) String() string {
	if m < crashModeCount {
		return crashModeNames[m]
	}
	return fmt.Sprintf("crash-mode(%d)", uint8(m))
}

// ParseCrashMode reads a mode written by String, so that scenario files can
// name modes.
func ParseCrashMode(s string) (CrashMode, error) {
	for m, name := range crashModeNames {
		if name == s {
			return CrashMode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown crash mode %q (want one of %v)", s, crashModeNames)
}

// MarshalText writes the mode's name, so that configurations and scenario
// files name modes rather than numbers.
func (m CrashMode) MarshalText() ([]byte, error) {
	if m >= crashModeCount {
		return nil, fmt.Errorf("unknown crash mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads a mode's name.
func (m *CrashMode) UnmarshalText(text []byte) error {
	parsed, err := ParseCrashMode(string(text))
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}

// AllCrashModes lists every crash mode.
func AllCrashModes() []CrashMode {
	return []CrashMode{DropUnsynced, KeepUnsynced, KeepPrefix, TearSectors}
}

// SyncFailureMode is what a failed file sync does to the data it was
// writing back. The exact rules are in the package comment.
type SyncFailureMode uint8

// Sync failure modes.
const (
	// SyncFailureDrops throws the file's unsynced data away, in the page
	// cache too: reads see the durable content at once.
	SyncFailureDrops SyncFailureMode = iota
	// SyncFailureLinux is Linux's behaviour since 4.13 (the "fsyncgate"
	// rules): the pages the failed writeback held are marked clean but kept
	// in the page cache, so reads still see them; no later sync writes
	// them (the next one succeeds and covers nothing of them); a power
	// loss or DropCaches loses them. The error is reported once.
	SyncFailureLinux
	syncFailureModeCount
)

var syncFailureModeNames = [syncFailureModeCount]string{"drop", "linux"}

func (m SyncFailureMode) String() string {
	if m < syncFailureModeCount {
		return syncFailureModeNames[m]
	}
	return fmt.Sprintf("sync-failure-mode(%d)", uint8(m))
}

// ParseSyncFailureMode reads a mode written by String.
func ParseSyncFailureMode(s string) (SyncFailureMode, error) {
	for m, name := range syncFailureModeNames {
		if name == s {
			return SyncFailureMode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown sync failure mode %q (want one of %v)", s, syncFailureModeNames)
}

// MarshalText writes the mode's name.
func (m SyncFailureMode) MarshalText() ([]byte, error) {
	if m >= syncFailureModeCount {
		return nil, fmt.Errorf("unknown sync failure mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads a mode's name.
func (m *SyncFailureMode) UnmarshalText(text []byte) error {
	parsed, err := ParseSyncFailureMode(string(text))
	if err != nil {
		return err
	}
	*m = parsed
	return nil
}

// Config shapes a disk. Zero fields take the defaults below, except
// SyncLatency (zero is a device with no service time) and WritebackAge
// (zero is no background writeback); DefaultConfig fills those too.
type Config struct {
	// SectorBytes is the granularity of dirty tracking and of tearing.
	SectorBytes int `json:"sector_bytes"`
	// CapacityBytes bounds the sum of the current sizes of the files that
	// a name or an open handle refers to; growth past it fails with
	// sim.ErrNoSpace.
	CapacityBytes int64 `json:"capacity_bytes"`
	// SyncLatency is the device service time of each file or directory
	// sync.
	SyncLatency sched.Latency `json:"sync_latency"`
	// BandwidthBytesPerSec is the write-back bandwidth: a sync also costs
	// its dirty bytes over this.
	BandwidthBytesPerSec int64 `json:"bandwidth_bytes_per_sec"`
	// WritebackAge makes a file's unsynced data durable on its own once its
	// oldest unsynced change is this old, and commits metadata operations
	// this old, as Linux's flusher threads and ext4's journal commit do.
	// Zero means never.
	WritebackAge time.Duration `json:"writeback_age"`
	// CrashModes are what a power loss may do to a file's unsynced data;
	// the disk's random stream picks one per file per crash.
	CrashModes []CrashMode `json:"crash_modes"`
	// SyncFailure is what a failed file sync does to the data it was
	// writing back; the zero value drops it.
	SyncFailure SyncFailureMode `json:"sync_failure"`
}

// Defaults.
const (
	DefaultSectorBytes                = 4096
	DefaultCapacityBytes        int64 = 1 << 40
	DefaultBandwidthBytesPerSec int64 = 300e6
	DefaultWritebackAge               = 30 * time.Second
)

// Bounds.
const (
	// FileBytesMax bounds a file's size; growth past it fails with
	// ErrFileTooLarge.
	FileBytesMax int64 = 1 << 40
	// OpenHandlesMax bounds the open handles of one disk; more fail with
	// ErrTooManyOpen.
	OpenHandlesMax = 1 << 16
	// JournalOpsMax bounds the uncommitted metadata journal. When it is
	// full the disk commits it at once, as a full ext4 journal forces a
	// commit.
	JournalOpsMax = 1 << 16
	// SectorBytesMax bounds SectorBytes.
	SectorBytesMax = 1 << 20
)

// DefaultConfig is a disk shaped like the project's reference machine: an
// SSD syncing in about 0.1 ms at 300 MB/s, Linux's 30 s dirty expiry, and
// every crash mode.
func DefaultConfig() Config {
	return Config{
		SectorBytes:          DefaultSectorBytes,
		CapacityBytes:        DefaultCapacityBytes,
		SyncLatency:          sched.Latency{Base: 100 * time.Microsecond, Jitter: 50 * time.Microsecond},
		BandwidthBytesPerSec: DefaultBandwidthBytesPerSec,
		WritebackAge:         DefaultWritebackAge,
		CrashModes:           AllCrashModes(),
	}
}

// resolved fills zero fields with defaults and checks the rest.
func (c Config) resolved() Config {
	if c.SectorBytes == 0 {
		c.SectorBytes = DefaultSectorBytes
	}
	if c.CapacityBytes == 0 {
		c.CapacityBytes = DefaultCapacityBytes
	}
	if c.BandwidthBytesPerSec == 0 {
		c.BandwidthBytesPerSec = DefaultBandwidthBytesPerSec
	}
	if len(c.CrashModes) == 0 {
		c.CrashModes = AllCrashModes()
	}
	sched.Assert(c.SectorBytes > 0 && c.SectorBytes <= SectorBytesMax, "simdisk: sector size %d out of range", c.SectorBytes)
	sched.Assert(c.CapacityBytes > 0, "simdisk: capacity %d", c.CapacityBytes)
	sched.Assert(c.BandwidthBytesPerSec > 0, "simdisk: bandwidth %d", c.BandwidthBytesPerSec)
	sched.Assert(c.WritebackAge >= 0, "simdisk: writeback age %v", c.WritebackAge)
	sched.Assert(c.SyncLatency.Base >= 0 && c.SyncLatency.Jitter >= 0, "simdisk: sync latency %+v", c.SyncLatency)
	sched.Assert(c.SyncFailure < syncFailureModeCount, "simdisk: unknown sync failure mode %d", c.SyncFailure)
	c.CrashModes = append([]CrashMode(nil), c.CrashModes...)
	for _, m := range c.CrashModes {
		sched.Assert(m < crashModeCount, "simdisk: unknown crash mode %d", m)
	}
	return c
}
