package storage

import (
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/sluice-sim/sluice/sim"
)

// Files whose removal failed. A remove that fails (EIO) leaves a file the
// log no longer accounts for: a temporary file, a compaction's cleaned
// copy, a producer snapshot it dropped. Recovery deletes the temporary
// ones at the next start, but a broker may run for months, and a dropped
// snapshot would be read back as live. So the log keeps their names and
// removes them again at each Tick; StrayFiles tells the files of the
// directory the log cannot account for, which a sound log leaves none of.

// leftoversMax bounds the names kept: past it the oldest is forgotten, to
// recovery's care at the next start.
const leftoversMax = 256

// removeOrRemember removes name, keeping it for a later try if that
// fails; it reports whether name is gone.
func (l *Log) removeOrRemember(name string) bool {
	err := l.fs.Remove(name)
	if err == nil || errors.Is(err, sim.ErrNotExist) {
		return true
	}
	l.logf("log %s: remove %s: %v (tried again later)", l.dir, name, err)
	l.forgetLeftover(name)
	if len(l.leftovers) == leftoversMax {
		l.leftovers = l.leftovers[1:]
	}
	l.leftovers = append(l.leftovers, name)
	return false
}

// forgetLeftover drops name from the files to remove: it was written
// again, and is live.
func (l *Log) forgetLeftover(name string) {
	l.leftovers = slices.DeleteFunc(l.leftovers, func(n string) bool { return n == name })
}

// createFile creates name for the log, which no longer leaves it to be
// removed: a compaction that cleans a group with the same first segment
// as one cancelled before writes the same names.
func (l *Log) createFile(name string) (sim.File, error) {
	f, err := l.fs.Create(name)
	if err == nil {
		l.forgetLeftover(name)
	}
	return f, err
}

// retryLeftovers tries again to remove the files a remove failed on.
func (l *Log) retryLeftovers() {
	pending := l.leftovers
	l.leftovers = nil
	for _, name := range pending {
		if l.removeOrRemember(name) {
			l.dirDirty = true
		}
	}
}

// StrayFiles lists the files of the log's directory it cannot account
// for: segment files of no segment, producer snapshots it does not hold,
// temporary and cleaned files while no compaction runs, unless a failed
// remove left them to be removed again. A sound log has none.
func (l *Log) StrayFiles() ([]string, error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.dir, err)
	}
	var stray []string
	for _, n := range names {
		if !l.accounts(n) && !slices.Contains(l.leftovers, path.Join(l.dir, n)) {
			stray = append(stray, n)
		}
	}
	return stray, nil
}

// accounts reports whether the directory entry name belongs to the log.
func (l *Log) accounts(name string) bool {
	offset, kind := parseName(name)
	switch kind {
	case kindLog, kindIndex, kindTimeIndex:
		return slices.ContainsFunc(l.segments, func(s *segment) bool { return s.base == offset })
	case kindSnapshot:
		return slices.ContainsFunc(l.snapshots, func(s snapshotFile) bool { return s.offset == offset })
	case kindLeftover, kindSwap:
		return l.compaction != nil // a compaction's cleaned files
	}
	return true // the epoch checkpoint, and files of others
}
