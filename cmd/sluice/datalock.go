package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dataLockName is the lock file a broker holds in its data directory, as
// Kafka's log directories hold ".lock": two brokers appending to the same
// logs would interleave their writes and each would recover over the
// other's.
const dataLockName = ".lock"

// dataLockBytesMax bounds what is read of another holder's lock file.
const dataLockBytesMax = 4096

// dataLock is a held lock on a data directory. The kernel releases it
// when the process ends, however it ends, so a crash leaves no stale lock.
type dataLock struct {
	file *os.File
}

// lockDataDir takes the lock of dir (created if missing) without waiting
// and writes the holder's pid and listen address into it. When another
// process holds it, the error names that process.
func lockDataDir(dir, listen string) (*dataLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	name := filepath.Join(dir, dataLockName)
	// Not O_TRUNC: the holder's lines must stay readable until the lock
	// is ours.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := describeHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by %s", dir, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	holder := fmt.Sprintf("pid %d\nlisten %s\n", os.Getpid(), listen)
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(holder), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", name, err)
	}
	return &dataLock{file: f}, nil
}

// release gives the lock up. The file stays: removing it would let a
// process that opened it just before lock a file nobody else sees.
func (l *dataLock) release() { l.file.Close() }

// describeHolder reads the holder's lines from its lock file: "pid 1234
// (listening on 127.0.0.1:9092)", or "another process" if it wrote none.
func describeHolder(f *os.File) string {
	buf := make([]byte, dataLockBytesMax)
	n, _ := f.ReadAt(buf, 0)
	var pid, listen string
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "pid":
			if _, err := strconv.Atoi(value); err == nil {
				pid = value
			}
		case "listen":
			listen = value
		}
	}
	switch {
	case pid == "":
		return "another process"
	case listen == "":
		return "pid " + pid
	}
	return fmt.Sprintf("pid %s (listening on %s)", pid, listen)
}
