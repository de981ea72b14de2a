package collector

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/faults"
	"github.com/sluice-sim/sluice/sim"
)

// FileChannel keeps events in a write-ahead log (file_channel_log.go): a
// commit returns only once its record is synced, concurrent commits share
// one sync (group commit), and a restart replays the checkpoint and the log
// after it. After a process kill or a power loss no committed event is
// lost and no uncommitted one appears; a record whose checksum fails is
// reported and never delivered.
//
// Events are held in memory as well as on disk (bounded by capacity), so
// takes never read the disk.
type FileChannel struct {
	*channelCore
	cfg FileChannelConfig
	// replayedTakes are the events the opening replay found taken, until
	// the agent tells Options.OnCommit of them.
	replayedTakes []Event
	// logs are the write-ahead logs, one per data directory; a
	// transaction's record goes to logs[records % len(logs)].
	logs    []*channelLog
	records uint64
	// unsynced are the files with appended bytes no sync covers yet.
	unsynced []sim.File
	// retired are earlier log files still open because a sync may need
	// them; they close once synced.
	retired []sim.File
	// next are the commits appended since the last round began. rounds
	// are the group commits begun and not yet ended, oldest first: they
	// end in this order, so commits complete in the order they were
	// appended and the queue stays in commit order. syncing counts the
	// rounds whose syncs have not all returned.
	next    []*pendingCommit
	rounds  []*syncRound
	syncing int
	// roundSoon says a round is to be considered after this turn.
	roundSoon bool
	// poisoned holds the log files a sync failed on: a failed sync may
	// have thrown away whatever was appended to the file before it, so
	// every commit on such a file that ends later fails too, whichever
	// round's sync covered it.
	poisoned map[sim.File]error
	// live maps every event put and not finally taken to its record.
	live map[uint64]recordLoc
	// checkpointing is set while a checkpoint is being written.
	checkpointing   bool
	checkpointTimer sim.Timer
	recordBuf       []byte
	// Problems lists what replay found damaged (checksum failures,
	// unreadable records): reported, never delivered.
	Problems []string
}

// channelLog is the write-ahead log in one data directory.
type channelLog struct {
	index uint32
	dir   string
	// file is the log file appended to, fileID its number, fileSize its
	// length; newFileUnsynced says its name is not yet durable.
	file            sim.File
	fileID          uint32
	fileSize        int64
	newFileUnsynced bool
	// rollDue says the current file takes no more records: a partial
	// append left bytes in it that replay stops at, or a sync poisoned
	// it, and the roll to the next file failed. The next commit on the
	// log rolls first, and fails if that fails too.
	rollDue bool
	// applied is the position up to which every record of this log is
	// reflected in live.
	applied recordLoc
}

// FileChannelConfig is a file channel's settings (Flume's names).
type FileChannelConfig struct {
	CheckpointDir string
	// DataDirs are the directories of the logs (Flume's comma-separated
	// dataDirs): each holds a log of its own with its own syncs.
	DataDirs            []string
	Capacity            int
	TransactionCapacity int
	CheckpointInterval  time.Duration
	MaxFileSize         int64
	KeepAlive           time.Duration
	// Bugs switches planted bugs on: faults.BugFileChannelAckBeforeFsync.
	Bugs faults.Bugs
}

// DefaultFileChannelConfig is Flume's defaults, under dir.
func DefaultFileChannelConfig(dir string) FileChannelConfig {
	return FileChannelConfig{
		CheckpointDir: path.Join(dir, "checkpoint"), DataDirs: DataDirsUnder(dir, 1),
		Capacity: 1000000, TransactionCapacity: 10000, CheckpointInterval: 30 * time.Second,
		MaxFileSize: 2146435071, KeepAlive: 3 * time.Second,
	}
}

// resolveDataDirs splits Flume's comma-separated dataDirs (config checked
// that no entry is empty) and resolves each.
func resolveDataDirs(dataDirs string, resolve func(string) string) []string {
	var dirs []string
	for _, dir := range strings.Split(dataDirs, ",") {
		dirs = append(dirs, resolve(strings.TrimSpace(dir)))
	}
	return dirs
}

// DataDirsUnder names n data directories under dir: "data" alone, as
// DefaultFileChannelConfig, or data1 to dataN.
func DataDirsUnder(dir string, n int) []string {
	if n == 1 {
		return []string{path.Join(dir, "data")}
	}
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = path.Join(dir, fmt.Sprintf("data%d", i+1))
	}
	return dirs
}

func fileChannelConfig(c *config.Channel, resolve func(string) string) FileChannelConfig {
	return FileChannelConfig{
		CheckpointDir:       resolve(c.String("checkpointDir")),
		DataDirs:            resolveDataDirs(c.String("dataDirs"), resolve),
		Capacity:            int(c.Int("capacity")),
		TransactionCapacity: int(c.Int("transactionCapacity")),
		CheckpointInterval:  time.Duration(c.Int("checkpointInterval")) * time.Millisecond,
		MaxFileSize:         c.Int("maxFileSize"),
		KeepAlive:           time.Duration(c.Int("keep-alive")) * time.Second,
	}
}

type pendingCommit struct {
	t    *Txn
	file sim.File
	end  recordLoc
	done func(error)
	// takeOnly says the commit has takes and no puts: it was answered
	// when its record was appended (see persist), and its round only
	// applies it.
	takeOnly bool
}

// syncRound is one group commit: syncs of every file with unsynced
// appends (and of the data directory after a new file), covering the
// commits appended before it began. Up to syncRoundsInFlightMax rounds
// sync at once: a sync's cost is mostly fixed, and a device serves
// several at once nearly as fast as one, so a commit arriving while a
// round syncs starts its own at once instead of waiting for it.
type syncRound struct {
	commits []*pendingCommit
	files   []sim.File
	// syncDirs are the logs whose data directory holds a new file.
	syncDirs []*channelLog
	pending  int
	synced   bool
	// failed holds the files whose sync failed; dirErrs the failed syncs
	// of data directories.
	failed  map[sim.File]error
	dirErrs map[*channelLog]error
}

const (
	// pendingCommitsMax bounds the commits waiting for the next sync.
	pendingCommitsMax = 1 << 16
	// syncRoundsInFlightMax bounds the group commits syncing at once.
	syncRoundsInFlightMax = 4
)

// OpenFileChannel replays the channel's checkpoint and log, starts a new
// log file, and calls ready on the loop once the channel can commit.
func OpenFileChannel(name string, env sim.Env, cfg FileChannelConfig, ready func(*FileChannel, error)) {
	openFileChannel(name, env, cfg, 1, ready)
}

const (
	// openAttemptsMax bounds the replays of one open: a read of the log
	// may fail, or a sync of what replay found (a failed sync before a
	// crash can still be throwing data away), and then what is on disk
	// must be read again.
	openAttemptsMax  = 10
	openRetryBackoff = 100 * time.Millisecond
)

func openFileChannel(name string, env sim.Env, cfg FileChannelConfig, attempt int, ready func(*FileChannel, error)) {
	f := &FileChannel{cfg: cfg, live: map[uint64]recordLoc{}, poisoned: map[sim.File]error{}}
	f.channelCore = newChannelCore(name, env, channelLimits{
		capacity: cfg.Capacity, txCapacity: cfg.TransactionCapacity, keepAlive: cfg.KeepAlive,
	}, f)
	f.bugs = cfg.Bugs
	// again replays once more after err, up to openAttemptsMax times.
	again := func(err error) {
		if attempt >= openAttemptsMax {
			ready(nil, err)
			return
		}
		env.Log.Logf("%v; replaying again", err)
		env.Clock.AfterFunc(openRetryBackoff, func() { openFileChannel(name, env, cfg, attempt+1, ready) })
	}
	if err := f.load(); err != nil {
		err = fmt.Errorf("file channel %s: %w", name, err)
		if errors.Is(err, errLogReadFailed) {
			// The disk failed a read: the records may be intact.
			env.Hit(probeFileChannelReadFailed)
			env.Clock.AfterFunc(0, func() { again(err) })
			return
		}
		env.Clock.AfterFunc(0, func() { ready(nil, err) })
		return
	}
	f.syncReplayed(func(err error) {
		if err != nil {
			f.closeLogs()
			again(fmt.Errorf("file channel %s: %w", name, err))
			return
		}
		for _, lg := range f.logs {
			lg.newFileUnsynced = false
		}
		f.scheduleCheckpoint()
		ready(f, nil)
	})
}

// syncReplayed makes what replay found durable before the channel serves:
// after a process kill the old log's last records may sit only in the page
// cache, and events replayed from them must not vanish in a later power
// loss once they have been delivered or built upon. It syncs every log
// file and then the data directory (which the new log file is in), of
// every log.
func (f *FileChannel) syncReplayed(done func(error)) {
	steps := newCompletions(done)
	for _, lg := range f.logs {
		f.syncReplayedLog(lg, steps)
	}
	steps.finish(nil)
}

func (f *FileChannel) syncReplayedLog(lg *channelLog, steps *completions) {
	steps.add()
	ids, err := logFileIDs(f.env.FS, lg.dir)
	if err != nil {
		f.env.Clock.AfterFunc(0, func() { steps.finish(err) })
		return
	}
	for _, id := range ids {
		if id == lg.fileID {
			continue
		}
		name := logFileName(lg.dir, id)
		file, err := f.env.FS.Open(name)
		steps.add()
		if err != nil {
			steps.finish(fmt.Errorf("open %s: %w", name, err))
			continue
		}
		file.Sync(func(err error) {
			file.Close()
			if err != nil {
				err = fmt.Errorf("sync %s: %w", name, err)
			}
			steps.finish(err)
		})
	}
	f.env.FS.SyncDir(lg.dir, func(err error) {
		if err != nil {
			err = fmt.Errorf("sync %s: %w", lg.dir, err)
		}
		steps.finish(err)
	})
}

// load replays what the disk holds and opens a fresh log file after it in
// every data directory.
func (f *FileChannel) load() error {
	if err := checkDataDirs(f.cfg.DataDirs); err != nil {
		return err
	}
	for _, dir := range append(slices.Clone(f.cfg.DataDirs), f.cfg.CheckpointDir) {
		if err := f.env.FS.MkdirAll(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	r, err := replay(f.env.FS, f.cfg.DataDirs, f.cfg.CheckpointDir)
	if err != nil {
		return err
	}
	f.Problems = r.problems
	f.hitReplayProbes(r)
	for _, p := range r.problems {
		f.env.Log.Logf("file channel %s: replay: %s", f.name, p)
	}
	live := r.sortedLive()
	if len(live) > f.capacity {
		// Takes are answered before their sync, so their room may be
		// refilled by puts whose records outlive the takes' (a failed
		// sync, or a power loss across two log files): the events
		// come back beside the new ones. They are in memory already;
		// puts wait until sinks bring the channel under capacity.
		f.env.Log.Logf("file channel %s: replay found %d events, more than capacity %d", f.name, len(live), f.capacity)
	}
	for _, it := range live {
		f.queue.pushBack(it)
		f.queueBytes += it.ev.size()
		f.live[it.id] = it.loc
	}
	f.nextID = r.nextID
	f.replayedTakes = r.taken
	f.env.Log.Logf("file channel %s: replayed %d records, %d events queued", f.name, r.records, len(live))
	// Appending to a file whose tail may be torn would strand what
	// follows the tear, so every start writes a new file.
	for i, dir := range f.cfg.DataDirs {
		lg := &channelLog{index: uint32(i), dir: dir}
		f.logs = append(f.logs, lg)
		if err := f.roll(lg, r.lastIDs[i]+1); err != nil {
			f.closeLogs()
			return err
		}
	}
	return nil
}

// checkDataDirs refuses a list of data directories that two logs would
// share or that names none.
func checkDataDirs(dirs []string) error {
	if len(dirs) == 0 || len(dirs) > config.DataDirsMax {
		return fmt.Errorf("%d data directories, want 1 to %d", len(dirs), config.DataDirsMax)
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		clean := path.Clean(dir)
		if dir == "" || seen[clean] || len(dir) > math.MaxUint16 {
			return fmt.Errorf("data directory %q is empty, named twice or too long", dir)
		}
		seen[clean] = true
	}
	return nil
}

// hitReplayProbes marks the recovery paths a replay took.
func (f *FileChannel) hitReplayProbes(r *replayed) {
	if r.records > 0 {
		f.env.Hit(probeFileChannelReplayed)
	}
	if r.badRecord {
		f.env.Hit(probeFileChannelTornTail)
	}
	if r.checkpointDamaged {
		f.env.Hit(probeFileChannelCheckpointDamaged)
	}
}

// roll starts file id of a log; its name becomes durable with the next
// sync.
func (f *FileChannel) roll(lg *channelLog, id uint32) error {
	name := logFileName(lg.dir, id)
	file, err := f.env.FS.Create(name)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if lg.file != nil {
		f.retired = append(f.retired, lg.file)
	}
	lg.file, lg.fileID, lg.fileSize, lg.newFileUnsynced, lg.rollDue = file, id, 0, true, false
	if len(f.rounds) == 0 && len(f.next) == 0 {
		lg.applied = recordLoc{log: lg.index, file: id}
	}
	return nil
}

// closeLogs closes every log's current file.
func (f *FileChannel) closeLogs() {
	for _, lg := range f.logs {
		if lg.file != nil {
			lg.file.Close()
		}
	}
}

// Name is the channel's name.
func (f *FileChannel) Name() string { return f.name }

// replayReporter is a channel whose opening replay may have found takes
// durable that nobody heard of (a file channel, a spillable channel's
// overflow): the agent reports them through Options.OnCommit at start.
type replayReporter interface {
	// claimReplayedTakes returns those takes once, then nothing.
	claimReplayedTakes() []Event
}

func (f *FileChannel) claimReplayedTakes() []Event {
	takes := f.replayedTakes
	f.replayedTakes = nil
	return takes
}

// persist appends the transaction's record and waits for a sync to cover
// it.
func (f *FileChannel) persist(t *Txn, done func(error)) {
	if len(t.puts) == 0 && len(t.takes) == 0 {
		done(nil)
		return
	}
	if len(f.next) >= pendingCommitsMax {
		done(fmt.Errorf("file channel %s: %d commits already wait for a sync", f.name, pendingCommitsMax))
		return
	}
	if err := checkEncodable(t.puts, t.takes); err != nil {
		done(fmt.Errorf("file channel %s: %w", f.name, err))
		return
	}
	f.assignIDs(t)
	f.recordBuf = encodeRecord(f.recordBuf, t.ids, t.puts, t.takes)
	// Transactions take the logs in turn (Flume's transaction id modulo
	// the directories), so the commits of one turn spread over every
	// log and a round syncs their files side by side.
	lg := f.logs[f.records%uint64(len(f.logs))]
	f.records++
	if lg.rollDue || (lg.fileSize > 0 && lg.fileSize+int64(len(f.recordBuf)) > f.cfg.MaxFileSize) {
		if err := f.roll(lg, lg.fileID+1); err != nil {
			done(fmt.Errorf("file channel %s: %w", f.name, err))
			return
		}
	}
	if _, err := lg.file.Append(f.recordBuf); err != nil {
		// A partial append may have left bytes; the next file starts
		// clean and replay stops this one at the bad record. Were
		// records appended after those bytes, replay would drop them
		// although committed.
		lg.rollDue = true
		if rollErr := f.roll(lg, lg.fileID+1); rollErr != nil {
			f.env.Log.Logf("file channel %s: %v; the log's next commit tries again", f.name, rollErr)
		}
		done(fmt.Errorf("file channel %s: append: %w", f.name, err))
		return
	}
	t.loc = recordLoc{log: lg.index, file: lg.fileID, off: lg.fileSize}
	lg.fileSize += int64(len(f.recordBuf))
	if !slices.Contains(f.unsynced, lg.file) {
		f.unsynced = append(f.unsynced, lg.file)
	}
	// A commit of takes alone is answered now, before a sync covers its
	// record. Its durability only keeps a replay from delivering its
	// events again, and at-least-once allows that: a crash before the
	// next sync returns may redeliver them, never lose one. The sync
	// still follows (the round below), so a take is durable one sync
	// later, and any later commit's sync covers it, being later in the
	// same file or in a file the same round syncs (after a failed sync,
	// see dropAnsweredTakes: the next checkpoint). A sink thus never
	// waits on the disk, which bounds a single sink to one batch per
	// sync otherwise. A commit with puts waits: its events must survive.
	takeOnly := len(t.puts) == 0
	ackNow := takeOnly || f.cfg.Bugs.On(faults.BugFileChannelAckBeforeFsync)
	if ackNow {
		// With the planted bug, puts too are answered before any sync
		// covers their record; the sync's outcome reaches nobody.
		ack := done
		defer ack(nil)
		done = func(error) {}
	}
	f.next = append(f.next, &pendingCommit{t: t, file: lg.file, end: recordLoc{log: lg.index, file: lg.fileID, off: lg.fileSize}, done: done, takeOnly: takeOnly})
	if !f.roundSoon {
		// The round begins after this turn of the loop, so that the
		// commits the turn makes share its sync.
		f.roundSoon = true
		f.env.Clock.AfterFunc(0, func() {
			f.roundSoon = false
			f.maybeStartRound()
		})
	}
}

// maybeStartRound begins a group commit of the commits appended since the
// last one, when fewer than syncRoundsInFlightMax are syncing. No round
// begins while one syncs the data directory: a later round's commits on
// the new file depend on that sync, and ending rounds in order would not
// fail them when it failed.
func (f *FileChannel) maybeStartRound() {
	if len(f.next) == 0 || f.syncing >= syncRoundsInFlightMax {
		return
	}
	for _, r := range f.rounds {
		if len(r.syncDirs) > 0 && !r.synced {
			return
		}
	}
	round := &syncRound{commits: f.next, files: f.unsynced, failed: map[sim.File]error{}, dirErrs: map[*channelLog]error{}}
	for _, lg := range f.logs {
		if lg.newFileUnsynced {
			round.syncDirs = append(round.syncDirs, lg)
			lg.newFileUnsynced = false
		}
	}
	f.next = nil
	f.unsynced = nil
	f.rounds = append(f.rounds, round)
	f.syncing++
	round.pending = len(round.files) + len(round.syncDirs)
	finish := func() {
		round.pending--
		if round.pending == 0 {
			f.roundSynced(round)
		}
	}
	for _, lg := range round.syncDirs {
		f.syncDataDir(round, lg, dirSyncAttemptsMax, finish)
	}
	for _, file := range round.files {
		file.Sync(func(err error) {
			if err != nil {
				round.failed[file] = err
			}
			finish()
		})
	}
	if round.pending == 0 {
		f.env.Clock.AfterFunc(0, func() { f.roundSynced(round) })
	}
}

// roundSynced ends, oldest first, every round whose syncs have all
// returned and that no unfinished round precedes, then begins the next.
func (f *FileChannel) roundSynced(round *syncRound) {
	round.synced = true
	f.syncing--
	for len(f.rounds) > 0 && f.rounds[0].synced {
		head := f.rounds[0]
		f.rounds[0] = nil
		f.rounds = f.rounds[1:]
		f.endRound(head)
	}
	f.closeRetired()
	f.maybeStartRound()
}

// dirSyncAttemptsMax bounds the tries to make a new log file's name
// durable. A failed directory sync loses no data (the file's own sync
// decides that), so it is worth trying again before failing commits whose
// records may well be on disk.
const dirSyncAttemptsMax = 3

func (f *FileChannel) syncDataDir(round *syncRound, lg *channelLog, attempts int, finish func()) {
	f.env.FS.SyncDir(lg.dir, func(err error) {
		if err != nil && attempts > 1 {
			f.env.Log.Logf("file channel %s: sync %s: %v; trying again", f.name, lg.dir, err)
			f.syncDataDir(round, lg, attempts-1, finish)
			return
		}
		if err != nil {
			round.dirErrs[lg] = err
		}
		finish()
	})
}

// endRound completes a group commit. A commit succeeds when the sync of
// its file did (and the data directory's, after a new file) and no sync
// of its file failed before. A failed file sync may have thrown away
// everything unsynced in that file, so the file is poisoned: the commits
// appended to it that end later fail too (those of rounds still in flight
// and those waiting for one), and when it is the current file writing
// moves to a new one.
func (f *FileChannel) endRound(round *syncRound) {
	for _, file := range round.files {
		if err := round.failed[file]; err != nil && f.poisoned[file] == nil {
			f.poisoned[file] = err
		}
	}
	failedErr := func(pc *pendingCommit) error {
		if err := f.poisoned[pc.file]; err != nil {
			return fmt.Errorf("file channel %s: sync: %w", f.name, err)
		}
		for _, lg := range round.syncDirs {
			if err := round.dirErrs[lg]; err != nil {
				return fmt.Errorf("file channel %s: sync %s: %w", f.name, lg.dir, err)
			}
		}
		return nil
	}
	var later []*pendingCommit
	var failed []*pendingCommit
	for _, pc := range f.next {
		if f.poisoned[pc.file] != nil {
			failed = append(failed, pc)
		} else {
			later = append(later, pc)
		}
	}
	f.next = later
	if len(round.failed) > 0 || len(round.dirErrs) > 0 {
		f.unsynced = slices.DeleteFunc(f.unsynced, func(file sim.File) bool { return f.poisoned[file] != nil })
		f.rollFailedLogs(round)
	}
	for _, pc := range round.commits {
		if err := failedErr(pc); err != nil {
			f.dropAnsweredTakes(pc)
			pc.done(err)
			continue
		}
		for _, id := range pc.t.ids {
			f.live[id] = pc.t.loc
		}
		for _, it := range pc.t.takes {
			delete(f.live, it.id)
		}
		f.logs[pc.end.log].applied = pc.end
		pc.done(nil)
	}
	for _, pc := range failed {
		f.dropAnsweredTakes(pc)
		pc.done(failedErr(pc))
	}
}

// rollFailedLogs moves writing to a new file in every log whose current
// file a sync poisoned or whose new file's name a round failed to make
// durable.
func (f *FileChannel) rollFailedLogs(round *syncRound) {
	for _, lg := range f.logs {
		if f.poisoned[lg.file] == nil && round.dirErrs[lg] == nil {
			continue
		}
		f.env.Log.Logf("file channel %s: a sync failed; writing moves to a new log file", f.name)
		f.env.Hit(probeFileChannelSyncFailed)
		lg.rollDue = true
		if err := f.roll(lg, lg.fileID+1); err != nil {
			f.env.Log.Logf("file channel %s: %v; the log's next commit tries again", f.name, err)
		}
	}
}

// dropAnsweredTakes forgets the events of an answered take-only commit
// whose sync failed: they are taken for good, though their record may be
// gone until the next checkpoint, which leaves them out. A crash before
// it may deliver them again, as at-least-once allows.
func (f *FileChannel) dropAnsweredTakes(pc *pendingCommit) {
	if !pc.takeOnly {
		return
	}
	for _, it := range pc.t.takes {
		delete(f.live, it.id)
	}
}

// closeRetired closes the old log files no sync needs any more: those
// with no appends waiting for the next round and none in a round that
// has not ended.
func (f *FileChannel) closeRetired() {
	f.retired = slices.DeleteFunc(f.retired, func(file sim.File) bool {
		if slices.Contains(f.unsynced, file) {
			return false
		}
		for _, r := range f.rounds {
			if slices.Contains(r.files, file) {
				return false
			}
		}
		file.Close()
		delete(f.poisoned, file)
		return true
	})
}

func (f *FileChannel) scheduleCheckpoint() {
	f.checkpointTimer = f.env.Clock.AfterFunc(f.cfg.CheckpointInterval, func() {
		f.writeCheckpoint(nil)
		f.scheduleCheckpoint()
	})
}

// writeCheckpoint records the live events as of the applied position,
// durably (a temporary file, synced, renamed, the directory synced), then
// removes the log files nothing live points into.
func (f *FileChannel) writeCheckpoint(done func(error)) {
	if f.checkpointing {
		if done != nil {
			done(nil)
		}
		return
	}
	f.checkpointing = true
	cp := checkpoint{nextID: f.nextID, dirs: f.cfg.DataDirs}
	keepFrom := make([]uint32, len(f.logs))
	for i, lg := range f.logs {
		cp.from = append(cp.from, lg.applied)
		keepFrom[i] = lg.applied.file
	}
	cp.live = make([]item, 0, len(f.live))
	for id, loc := range f.live {
		cp.live = append(cp.live, item{id: id, loc: loc})
	}
	sort.Slice(cp.live, func(i, j int) bool { return cp.live[i].id < cp.live[j].id })
	for _, it := range cp.live {
		keepFrom[it.loc.log] = min(keepFrom[it.loc.log], it.loc.file)
	}
	finish := func(err error) {
		f.checkpointing = false
		if err != nil {
			f.env.Log.Logf("file channel %s: checkpoint: %v", f.name, err)
		} else {
			for i, lg := range f.logs {
				f.removeLogsBefore(lg, keepFrom[i])
			}
		}
		if done != nil {
			done(err)
		}
	}
	tmp := path.Join(f.cfg.CheckpointDir, checkpointTempName)
	file, err := f.env.FS.Create(tmp)
	if err != nil {
		finish(fmt.Errorf("create %s: %w", tmp, err))
		return
	}
	if _, err := file.Append(encodeCheckpoint(cp)); err != nil {
		file.Close()
		finish(fmt.Errorf("write %s: %w", tmp, err))
		return
	}
	file.Sync(func(err error) {
		file.Close()
		if err != nil {
			finish(fmt.Errorf("sync %s: %w", tmp, err))
			return
		}
		if err := f.env.FS.Rename(tmp, path.Join(f.cfg.CheckpointDir, checkpointName)); err != nil {
			finish(fmt.Errorf("rename %s: %w", tmp, err))
			return
		}
		f.env.FS.SyncDir(f.cfg.CheckpointDir, finish)
	})
}

// removeLogsBefore deletes a log's files numbered below id: the durable
// checkpoint makes its replay start at or after id and no live event lies
// in them.
func (f *FileChannel) removeLogsBefore(lg *channelLog, id uint32) {
	ids, err := logFileIDs(f.env.FS, lg.dir)
	if err != nil {
		f.env.Log.Logf("file channel %s: %v", f.name, err)
		return
	}
	for _, old := range ids {
		if old >= id || old >= lg.fileID {
			break
		}
		if err := f.env.FS.Remove(logFileName(lg.dir, old)); err != nil {
			f.env.Log.Logf("file channel %s: remove old log: %v", f.name, err)
		}
	}
}

// Checkpoint writes a checkpoint now (for tests and shutdown).
func (f *FileChannel) Checkpoint(done func(error)) { f.writeCheckpoint(done) }

// Stop refuses new transactions, lets the commits in flight finish, writes
// a checkpoint and closes the log, then calls done.
func (f *FileChannel) Stop(done func()) {
	f.closed = true
	if f.checkpointTimer != nil {
		f.checkpointTimer.Stop()
	}
	var wait func()
	wait = func() {
		if len(f.rounds) > 0 || len(f.next) > 0 || f.checkpointing {
			f.env.Clock.AfterFunc(time.Millisecond, wait)
			return
		}
		f.writeCheckpoint(func(error) {
			f.closeRetired()
			f.closeLogs()
			done()
		})
	}
	wait()
}
