// Package simdisk is a node's simulated disk: an in-memory file system with
// a page cache, a device that serves syncs one at a time, a metadata journal,
// and crash semantics precise enough to test crash recovery against. It
// implements sim.FS and sim.File over the world's event loop.
//
// # Files
//
// Each file (inode) has a durable image (content and size on the platter), a
// current image (the page cache: what reads see) and a set of dirty sectors
// of Config.SectorBytes each. Reads and writes are synchronous and instant
// and touch only the current image. A sector is dirty when its current bytes
// may differ from its durable ones; clean sectors are equal in both images.
// Beyond an image's size its bytes read as zero.
//
// File.Sync captures the dirty sectors and the size at the call. When the
// device has served it, at
//
//	max(now, device busy until) + (SyncLatency sample + dirty bytes / bandwidth) * slow factor,
//
// the captured size and sectors become durable, sectors not rewritten since
// the call become clean, and done is called on the node's loop. Data
// written after the call is not covered. FS.SyncDir costs the same device
// time without the transfer.
//
// The durable effect is a disk event, not a node event: a process crash
// (ProcessKill) lets syncs in flight complete, though their callbacks are
// gone with the node's incarnation; a power loss (PowerLoss) voids them.
//
// A sync that FailSyncs made fail returns sim.ErrIO. A failed SyncDir
// commits nothing. What a failed file sync does to the data it was writing
// back is Config.SyncFailure's choice:
//
//   - SyncFailureDrops (the default): when it completes the file's dirty
//     data is thrown away: the current image reverts to the durable one,
//     so reads see what the platter holds. Syncs of the same file called
//     before that revert also return sim.ErrIO.
//   - SyncFailureLinux, Linux's behaviour since 4.13 (the "fsyncgate"
//     rules): the sync captures the dirty sectors at the call like any
//     other. When it completes, take each captured sector nothing changed
//     since, and L the smaller of the sizes at the call and now: if its
//     bytes below L differ from the platter's it becomes lost: clean (no
//     later sync or writeback writes it) yet still showing its current
//     bytes in the page cache, so reads, and a new process after a
//     ProcessKill, still see them; if it differs only past L (a
//     truncation, which is metadata, not a page) it stays dirty;
//     otherwise it is clean. The durable size does not change.
//   - The error is reported once: later syncs succeed, including one
//     called while the failing one was in flight, and no sync called
//     before the failure completed writes a sector it made lost. The next
//     successful sync or writeback makes the current size durable (and
//     zeros on the platter past a smaller one), so a lost sector then
//     reads, after a crash, as the platter's old bytes (zeros past the old
//     size), as on ext4.
//   - A lost sector is dirty again, and written whole by the next sync,
//     once a write, a truncation or a bit flip touches it, or growth of
//     the file brings the zeros past the old size into it. A power loss,
//     whatever the crash mode, and DropCaches (the kernel evicting clean
//     pages) give lost sectors back their durable bytes, zeros past the
//     current size; where that differs from the platter the sector is
//     dirty. A shrinking truncation always zeroes and dirties the sector
//     it cuts, and dirties every sector past it that holds anything.
//   - A program that trusts a later successful sync to cover what a
//     failed one did not loses data it believes durable. The tests hold
//     these rules against a plain reference model (linux_model_test.go).
//
// With WritebackAge > 0 a flusher wakes every WritebackAge/6 (on a fixed
// grid of simulated time) and writes back, whole, every file whose oldest
// change not yet durable is at least WritebackAge old, as Linux expires a
// dirty inode; it also commits metadata operations that old, as ext4 commits
// its journal periodically. A workload that never syncs therefore loses at
// most about WritebackAge*7/6 of changes on a power loss.
//
// # Names
//
// Directories are explicit (MkdirAll) and nested. Creating a file, renaming,
// removing and making a directory change the current namespace at once and
// append an operation to the disk's metadata journal. SyncDir commits the
// whole journal as it stood at the call, whatever directory it names, as
// ext4 does. On power loss a random prefix of the uncommitted journal
// survives: a file created in a directory never synced may vanish, a
// removed file may come back, and a rename is atomic: the file is found
// under the old name or the new one, never both. A file no name refers to
// after the crash is gone. A file's data durability is independent of its
// name's.
// When the journal holds JournalOpsMax operations the next one commits it
// first, as a full journal forces a commit.
//
// Names are clean, relative, slash-separated paths ("orders-0/0.log"); ""
// and "." name the root where a directory is expected. Absolute names,
// names with ".." and unclean names ("a//b", "a/") fail with ErrInvalidPath.
//
// # Power loss
//
// PowerLoss first decides the namespace as above. Then, for each named file
// with unsynced data, in name order, the disk's random stream picks one of
// Config.CrashModes, and the file's new durable and current content is, with
// D and C its durable and current images, |D| and |C| their sizes:
//
//   - DropUnsynced: D.
//   - KeepUnsynced: C, except that lost sectors (SyncFailureLinux) are D.
//   - KeepPrefix: size n uniform in [min(|D|,|C|), max(|D|,|C|)]; byte i < n
//     is D[i] when i < |D| or i is in a lost sector, else C[i]. An
//     appended tail survives as a prefix; overwrites below the durable
//     size are lost.
//   - TearSectors: size |D| or |C| with equal chance; each dirty sector
//     independently all D or all C; clean sectors are the same in both;
//     lost sectors are D.
//
// So nothing is invented: after a crash every byte is its durable value or
// its current (last written) value, a position beyond an image's size
// counting as zero there, and every byte that a completed sync made durable
// and nothing changed since survives exactly.
//
// # Faults and bounds
//
// SetSlowFactor stretches sync service times, FailSyncs fails syncs
// (DropCaches evicts what SyncFailureLinux left lying in the cache),
// SetCapacity fills the disk (growth beyond it fails with sim.ErrNoSpace,
// nothing written), SetReadErrorRate fails reads with sim.ErrIO,
// SetMetaErrorRate fails creates, removes, renames, new directories and
// truncations with sim.ErrIO (changing nothing) and cuts writes short (a
// prefix written, then sim.ErrIO, as write(2) does when the device fails
// part way), Corrupt flips bits (CorruptFile only in one named file). All draw from the disk's own random
// stream, so a seed replays them; each injected metadata error or short
// write adds a KindFault note to the trace. Files are bounded by FileBytesMax, open handles per disk by
// OpenHandlesMax.
//
// Every write, truncate and metadata operation adds a KindWrite note to the
// loop's trace whose detail hashes the bytes, name and offset, so two runs
// that write different bytes diverge at the write.
package simdisk
