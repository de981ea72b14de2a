package collector

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

func readAll(t *testing.T, fs sim.FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Size()
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(buf)
}

func deliver(t *testing.T, r *rig, s Sink, events ...Event) {
	t.Helper()
	var result error
	called := false
	s.Deliver(events, func(err error) { called, result = true, err })
	r.settle()
	if !called || result != nil {
		t.Fatalf("deliver: called %v, %v", called, result)
	}
}

func bodies(list ...string) []Event {
	out := make([]Event, len(list))
	for i, b := range list {
		out[i].Body = []byte(b)
	}
	return out
}

// TestFileRollSinkRollsAndSyncs writes batches across a roll interval:
// two files in Flume's naming, each with its lines; what was delivered
// survives a power loss, since a batch is reported only after its sync.
func TestFileRollSinkRollsAndSyncs(t *testing.T) {
	r := newRig(1)
	s, err := NewFileRollSink("k1", r.env, FileRollConfig{Directory: "out", RollInterval: time.Second, AppendNewline: true})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, r, s, bodies("a", "b")...)
	r.advance(1500 * time.Millisecond)
	deliver(t, r, s, bodies("c")...)
	r.crash(true)
	r.settle()
	names, _ := r.env.FS.List("out")
	if len(names) != 2 || !strings.HasSuffix(names[0], "-1") || !strings.HasSuffix(names[1], "-2") {
		t.Fatalf("files %v", names)
	}
	if a, b := readAll(t, r.env.FS, "out/"+names[0]), readAll(t, r.env.FS, "out/"+names[1]); a != "a\nb\n" || b != "c\n" {
		t.Fatalf("contents %q %q", a, b)
	}
}

func hdfsEvent(body string, ts time.Time) Event {
	return Event{Body: []byte(body), Headers: map[string]string{"timestamp": fmtMillis(ts), "host": "web1"}}
}

func fmtMillis(t time.Time) string { return itoa(t.UnixMilli()) }

// TestHDFSSinkBucketsAndRolls writes events of two hours into a path with
// escapes: one directory per hour and header, files in use carry .tmp,
// rollCount closes a file (renamed without .tmp) before the event that
// would pass it, and rollInterval closes the rest.
func TestHDFSSinkBucketsAndRolls(t *testing.T) {
	r := newRig(2)
	s := NewHDFSSink("k1", r.env, HDFSConfig{
		Path: "flume/%{host}/%Y-%m-%d/%H", FilePrefix: "events", InUseSuffix: ".tmp",
		RollInterval: 30 * time.Second, RollCount: 3, MaxOpenFiles: 5000,
	})
	h10 := time.Date(2026, 11, 30, 10, 5, 0, 0, time.UTC)
	h11 := h10.Add(time.Hour)
	deliver(t, r, s, hdfsEvent("1", h10), hdfsEvent("2", h10), hdfsEvent("x", h11), hdfsEvent("3", h10), hdfsEvent("4", h10))
	ten, _ := r.env.FS.List("flume/web1/2026-11-30/10")
	eleven, _ := r.env.FS.List("flume/web1/2026-11-30/11")
	if len(ten) != 2 || strings.HasSuffix(ten[0], ".tmp") || !strings.HasSuffix(ten[1], ".tmp") || len(eleven) != 1 || !strings.HasPrefix(eleven[0], "events.") {
		t.Fatalf("hour 10: %v, hour 11: %v", ten, eleven)
	}
	if got := readAll(t, r.env.FS, "flume/web1/2026-11-30/10/"+ten[0]); got != "1\n2\n3\n" {
		t.Fatalf("first file %q", got)
	}
	r.advance(31 * time.Second)
	ten, _ = r.env.FS.List("flume/web1/2026-11-30/10")
	eleven, _ = r.env.FS.List("flume/web1/2026-11-30/11")
	if strings.HasSuffix(ten[1], ".tmp") || strings.HasSuffix(eleven[0], ".tmp") {
		t.Fatalf("rollInterval did not close: %v %v", ten, eleven)
	}
	var err error
	s.Deliver([]Event{{Body: []byte("no time")}}, func(e error) { err = e })
	r.settle()
	if err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("event without a timestamp: %v", err)
	}
}

// TestFileSinksConfigured runs both sinks from a configuration, behind a
// timestamp interceptor.
func TestFileSinksConfigured(t *testing.T) {
	text := `a.sources = r1
a.channels = c1 c2
a.sinks = k1 k2
a.sources.r1.type = seq
a.sources.r1.totalEvents = 25
a.sources.r1.batchSize = 5
a.sources.r1.channels = c1 c2
a.sources.r1.interceptors = ts
a.sources.r1.interceptors.ts.type = timestamp
a.channels.c1.type = memory
a.channels.c2.type = memory
a.sinks.k1.type = file_roll
a.sinks.k1.sink.directory = /var/out
a.sinks.k1.channel = c1
a.sinks.k2.type = hdfs
a.sinks.k2.hdfs.path = /data/%Y/%m/%d
a.sinks.k2.hdfs.rollCount = 0
a.sinks.k2.hdfs.rollSize = 0
a.sinks.k2.hdfs.batchSize = 10
a.sinks.k2.channel = c2
`
	if _, err := config.Parse(text, "a", nil); err != nil {
		t.Fatal(err)
	}
	aw := newAgentWorld(t, 3, text, "a")
	aw.run(time.Second)
	fs := aw.agent.env.FS
	rolled, _ := fs.List("var/out")
	if len(rolled) != 1 || strings.Count(readAll(t, fs, "var/out/"+rolled[0]), "\n") != 25 {
		t.Fatalf("file_roll wrote %v", rolled)
	}
	day := aw.agent.env.Clock.Now().UTC().Format("data/2006/01/02")
	files, _ := fs.List(day)
	if len(files) != 1 || !strings.HasPrefix(files[0], "FlumeData.") || !strings.HasSuffix(files[0], ".tmp") {
		t.Fatalf("hdfs wrote %v in %s", files, day)
	}
	aw.run(40 * time.Second)
	files, _ = fs.List(day)
	if len(files) != 1 || strings.HasSuffix(files[0], ".tmp") || strings.Count(readAll(t, fs, day+"/"+files[0]), "\n") != 25 {
		t.Fatalf("after the roll interval hdfs holds %v", files)
	}
}

// TestHDFSSinkDeliveredSurvivesPowerLoss cuts the power after a batch was
// reported delivered: the in-use file and its lines are on disk.
func TestHDFSSinkDeliveredSurvivesPowerLoss(t *testing.T) {
	r := newRig(4)
	s := NewHDFSSink("k1", r.env, HDFSConfig{Path: "flume/%Y", FilePrefix: "events", InUseSuffix: ".tmp", MaxOpenFiles: 10})
	when := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	deliver(t, r, s, hdfsEvent("kept-1", when), hdfsEvent("kept-2", when))
	r.crash(true)
	r.settle()
	files, _ := r.env.FS.List("flume/2026")
	if len(files) != 1 || readAll(t, r.env.FS, "flume/2026/"+files[0]) != "kept-1\nkept-2\n" {
		t.Fatalf("after a power loss: %v", files)
	}
}
