package storage

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// File name suffixes in a partition directory, as Kafka names them.
const (
	suffixLog       = ".log"
	suffixIndex     = ".index"
	suffixTimeIndex = ".timeindex"
	suffixSnapshot  = ".snapshot"
	// suffixCleaned marks a compaction's output before it replaces
	// segments; suffixTmp a file written before a rename; Kafka's
	// suffixSwap and suffixDeleted mark swaps and deletions in flight.
	// Recovery removes all of them but a <base>.log.swap, a cleaned
	// segment committed to replace the segments its offsets cover, whose
	// swap it completes.
	suffixCleaned = ".cleaned"
	suffixTmp     = ".tmp"
	suffixSwap    = ".swap"
	suffixDeleted = ".deleted"

	// EpochCheckpointName is the leader epoch cache's file.
	EpochCheckpointName = "leader-epoch-checkpoint"
	offsetDigits        = 20
)

// fileKind is what a directory entry holds.
type fileKind uint8

const (
	kindUnknown fileKind = iota
	kindLog
	kindIndex
	kindTimeIndex
	kindSnapshot
	kindEpochCheckpoint
	// kindLeftover is a temporary or half-done file recovery removes.
	kindLeftover
	// kindSwap is a cleaned segment log committed to replace others.
	kindSwap
)

// offsetName is a 20-digit zero-padded offset, Kafka's file stem.
func offsetName(offset int64) string { return fmt.Sprintf("%0*d", offsetDigits, offset) }

func segmentFile(dir string, base int64, suffix string) string {
	return path.Join(dir, offsetName(base)+suffix)
}

// parseName classifies a directory entry and reads its offset.
func parseName(name string) (offset int64, kind fileKind) {
	if name == EpochCheckpointName {
		return 0, kindEpochCheckpoint
	}
	if stem, ok := strings.CutSuffix(name, suffixLog+suffixSwap); ok {
		if offset, kind := parseName(stem + suffixLog); kind == kindLog {
			return offset, kindSwap
		}
	}
	for _, s := range []string{suffixCleaned, suffixTmp, suffixSwap, suffixDeleted} {
		if strings.HasSuffix(name, s) {
			return 0, kindLeftover
		}
	}
	stem, suffix, ok := strings.Cut(name, ".")
	if !ok || len(stem) != offsetDigits {
		return 0, kindUnknown
	}
	offset, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || offset < 0 {
		return 0, kindUnknown
	}
	switch "." + suffix {
	case suffixLog:
		return offset, kindLog
	case suffixIndex:
		return offset, kindIndex
	case suffixTimeIndex:
		return offset, kindTimeIndex
	case suffixSnapshot:
		return offset, kindSnapshot
	}
	return 0, kindUnknown
}
