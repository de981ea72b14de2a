package scenario

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"time"

	"github.com/sluice-sim/sluice/sim"
	"github.com/sluice-sim/sluice/sim/sched"
	"github.com/sluice-sim/sluice/sim/world"
)

// spoolWriter writes the lines a spooldir source reads, as an
// application handing finished files to Flume would: it appends lines to
// a file in a staging directory, and every spoolWriterFileLines lines
// syncs the file, renames it into the spooled directory and syncs that
// directory; the file's lines count as acknowledged once that sync
// returned. A file in the spooled directory is never changed again, as
// the source requires. Files are named by boot and number, so that the
// source, which takes them in name order, reads them in the order they
// were acknowledged. With every boot of its node it first removes what
// the staging directory holds: files whose lines were never
// acknowledged, which a power loss may have torn.
type spoolWriter struct {
	writtenLines
	writing bool
	// file is the staging file being written, nil between files; name
	// its name, lines and appendedAt its lines and when each was
	// appended.
	file       sim.File
	name       string
	lines      []string
	appendedAt []time.Duration
	// files counts the files begun this boot; publishing is set while a
	// finished file is synced and moved in.
	files      int
	publishing bool
}

const (
	// spoolWriterDir is the spooled directory, spoolWriterStaging where
	// files are written first, on the entry agent's node.
	spoolWriterDir     = "spool/in"
	spoolWriterStaging = "spool/staging"
	// spoolWriterFileLines is how many lines a file holds: the source
	// reads one in several batches, so that a crash may find it half
	// read, and a run spools tens of files.
	spoolWriterFileLines = 200
	// spoolWriterStagedMax bounds the staging files removed at a boot.
	spoolWriterStagedMax = 1024
)

func (l *spoolWriter) start(env sim.Env) {
	l.env = env
	l.starts++
	l.seq, l.files = 0, 0
	l.file, l.name, l.lines, l.appendedAt, l.writing, l.publishing = nil, "", nil, nil, false, false
	if err := l.clearStaging(); err != nil {
		l.lastErr = err.Error()
		env.Log.Logf("spool writer: %v", err)
	}
}

// clearStaging makes the directories and removes what an earlier boot
// left staged.
func (l *spoolWriter) clearStaging() error {
	for _, dir := range []string{spoolWriterStaging, spoolWriterDir} {
		if err := l.env.FS.MkdirAll(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	names, err := l.env.FS.List(spoolWriterStaging)
	if err != nil {
		return fmt.Errorf("list %s: %w", spoolWriterStaging, err)
	}
	for _, name := range names[:min(len(names), spoolWriterStagedMax)] {
		if err := l.env.FS.Remove(path.Join(spoolWriterStaging, name)); err != nil {
			return fmt.Errorf("remove a staged file: %w", err)
		}
	}
	return nil
}

// resume starts writing, once the agent runs.
func (l *spoolWriter) resume() {
	if !l.writing {
		l.writing = true
		l.env.Clock.AfterFunc(logWriterInterval, l.tick)
	}
}

func (l *spoolWriter) tick() {
	if l.stopped() {
		l.publish() // the last lines, however few
		return
	}
	l.env.Clock.AfterFunc(logWriterInterval, l.tick)
	if l.file == nil {
		if err := l.begin(); err != nil {
			l.lastErr = err.Error()
			return
		}
	}
	line := l.nextLine()
	if _, err := l.file.Append([]byte(line + "\n")); err != nil {
		// The file may hold part of the line: give the whole file up.
		l.lines = append(l.lines, line)
		l.abandon(err)
		return
	}
	l.lines = append(l.lines, line)
	l.appendedAt = append(l.appendedAt, l.env.Clock.Mono())
	if len(l.lines) >= spoolWriterFileLines {
		l.publish()
	}
}

// begin creates the next staging file.
func (l *spoolWriter) begin() error {
	l.files++
	name := fmt.Sprintf("b%04d-%06d.log", l.starts, l.files)
	f, err := l.env.FS.Create(path.Join(spoolWriterStaging, name))
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	l.file, l.name, l.lines, l.appendedAt = f, name, nil, nil
	return nil
}

// abandon gives up the staging file: its lines failed.
func (l *spoolWriter) abandon(err error) {
	l.file.Close()
	if rerr := l.env.FS.Remove(path.Join(spoolWriterStaging, l.name)); rerr != nil && !errors.Is(rerr, sim.ErrNotExist) {
		err = fmt.Errorf("%w; remove: %w", err, rerr)
	}
	l.settle(l.lines, l.appendedAt, err)
	l.file, l.lines, l.appendedAt = nil, nil, nil
}

// publish moves the staging file into the spooled directory once it is
// durable, one file at a time; a file that fills meanwhile waits for the
// next tick.
func (l *spoolWriter) publish() {
	if l.publishing || l.file == nil || len(l.lines) == 0 {
		return
	}
	l.publishing = true
	file, name, lines, appended, boot := l.file, l.name, l.lines, l.appendedAt, l.starts
	l.file, l.lines, l.appendedAt = nil, nil, nil
	done := func(err error) {
		if boot != l.starts {
			return
		}
		l.publishing = false
		l.settle(lines, appended, err)
		if l.stopped() {
			l.publish() // what was written while this one moved
		}
	}
	file.Sync(func(err error) {
		file.Close()
		if boot != l.starts {
			return
		}
		staged := path.Join(spoolWriterStaging, name)
		if err != nil {
			l.env.FS.Remove(staged) // its lines failed; the source never sees it
			done(fmt.Errorf("sync %s: %w", name, err))
			return
		}
		if err := l.env.FS.Rename(staged, path.Join(spoolWriterDir, name)); err != nil {
			l.env.FS.Remove(staged)
			done(fmt.Errorf("move %s: %w", name, err))
			return
		}
		// The simulated disk commits its whole journal with a
		// directory's sync: the spooled name and the directories'.
		l.env.FS.SyncDir(spoolWriterDir, func(err error) {
			if err != nil {
				err = fmt.Errorf("sync %s: %w", spoolWriterDir, err)
			}
			done(err)
		})
	})
}

func (l *spoolWriter) describe() string {
	return fmt.Sprintf("%d lines spooled, %d failed, %d boots, %d files this boot; last error: %s",
		len(l.acked), l.failed, l.starts, l.files, l.lastErr)
}

// A spooldir source resumes a file from its tracker only when the agent
// stops while a file is half read; with files read in a few milliseconds
// and spooled every few hundred, random crashes seldom find one. So a
// swarm seed of source=spooldir plants a few episodes: as soon as the
// source's tracker file names a file (a batch of it committed, the file
// not yet completed), the entry agent is killed or loses power, and
// boots again a moment later. The pipeline's accounting then judges that
// no acknowledged line was lost.
const (
	// spoolCrashPoll is how often an episode looks for a tracker file.
	spoolCrashPoll = time.Millisecond
	// spoolCrashWaitMax is how long an episode waits for one: files are
	// spooled every few hundred milliseconds.
	spoolCrashWaitMax = 2 * time.Second
	// spoolCrashEpisodesMax bounds the episodes a seed draws.
	spoolCrashEpisodesMax = 2
	// spoolCrashQuiet is how long before the faults heal the last
	// episode must have begun.
	spoolCrashQuiet = spoolCrashWaitMax + time.Second
	// spoolTrackerFile is the spooldir source's tracker, in its default
	// tracker directory.
	spoolTrackerFile = spoolWriterDir + "/.flumespool/.flumespool-main.meta"
)

// scheduleSpoolCrashes plants the seed's episodes (one to
// spoolCrashEpisodesMax) at times drawn from their own stream, so that
// they shift no other draw.
func (c *pipelineCluster) scheduleSpoolCrashes(w *world.World, node string) {
	r := sched.NewRand(c.o.Seed, "spool-crash", 0)
	from, until := time.Duration(faultsStart), c.o.Run-spoolCrashQuiet
	if until <= from {
		return // a run too short for an episode
	}
	for range 1 + r.IntN(spoolCrashEpisodesMax) {
		at := from + time.Duration(r.Int64N(int64(until-from)))
		crash := drawAgentCrash(r)
		w.At(at, func() { c.spoolCrashEpisode(w, node, crash) })
	}
}

// spoolCrashEpisode waits for node's spooldir source to be part way
// through a file, then crashes the node. Its draws were made
// when it was planted, so that one the options skip shifts no other.
func (c *pipelineCluster) spoolCrashEpisode(w *world.World, node string, crash agentCrash) {
	skip := c.o.skipsEpisode(c.episodes)
	c.episodes++
	n := w.Node(node)
	if skip || !n.Up() {
		return // left out, or a random fault got there first
	}
	boots := c.written.starts
	deadline := w.Now() + spoolCrashWaitMax
	var poll func()
	poll = func() {
		if !n.Up() || c.written.starts != boots || w.Now() >= deadline {
			return // a random fault got there first, or no file came
		}
		if _, err := c.written.env.FS.Stat(spoolTrackerFile); err != nil {
			w.At(w.Now()+spoolCrashPoll, poll)
			return
		}
		c.spoolCrashes++
		crash.apply(w, node)
	}
	w.At(w.Now()+spoolCrashPoll, poll)
}

// agentCrash is a planted crash of an agent's node: a kill or a power
// loss, and how long the node stays down.
type agentCrash struct {
	powerLoss bool
	down      time.Duration
}

func drawAgentCrash(r *rand.Rand) agentCrash {
	return agentCrash{powerLoss: r.IntN(2) == 0, down: time.Duration(100+r.IntN(400)) * time.Millisecond}
}

// apply crashes node now and boots it again after the crash's down time.
func (a agentCrash) apply(w *world.World, node string) {
	if a.powerLoss {
		tolerateNoEffect(w.PowerLoss(node))
	} else {
		tolerateNoEffect(w.Kill(node))
	}
	w.At(w.Now()+a.down, func() { tolerateNoEffect(w.Restart(node)) })
}
