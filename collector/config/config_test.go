package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func mustParse(t *testing.T, text, agent string, env map[string]string) *Agent {
	t.Helper()
	a, err := Parse(text, agent, mapEnv(env))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return a
}

func mapEnv(m map[string]string) LookupEnv {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

func TestSeedConfigsParseUnmodified(t *testing.T) {
	for _, name := range []string{"seed-netcat-memory-logger.conf", "seed-netcat-memory-kafka.conf"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			a := mustParse(t, string(text), "agent1", nil)
			if len(a.Sources) != 1 || len(a.Channels) != 1 || len(a.Sinks) != 1 {
				t.Fatalf("got %d sources, %d channels, %d sinks", len(a.Sources), len(a.Channels), len(a.Sinks))
			}
			src, ch, sink := a.Sources[0], a.Channels[0], a.Sinks[0]
			if src.Type != "netcat" || src.String("bind") != "0.0.0.0" || src.Int("port") != 4141 || !src.Bool("ack-every-event") {
				t.Fatalf("source %+v", src)
			}
			if src.Int("max-line-length") != 512 || src.Selector.Type != "replicating" {
				t.Fatalf("defaults: max-line-length %d, selector %s", src.Int("max-line-length"), src.Selector.Type)
			}
			if ch.Type != "memory" || ch.Int("capacity") != 1000 || ch.Int("transactionCapacity") != 100 || ch.Int("keep-alive") != 3 {
				t.Fatalf("channel %+v", ch)
			}
			if sink.Channel != "c1" || len(src.Channels) != 1 || src.Channels[0] != "c1" {
				t.Fatalf("wiring: source -> %v, sink <- %s", src.Channels, sink.Channel)
			}
			if strings.Contains(name, "kafka") {
				if sink.Type != "kafka" || sink.String("brokerList") != "m1:9092,m2:9092,m3:9092" || sink.String("topic") != "mylog" ||
					sink.BatchSize() != 20 || sink.String("requiredAcks") != "1" {
					t.Fatalf("kafka sink %+v batch %d", sink, sink.BatchSize())
				}
			} else if sink.Type != "logger" {
				t.Fatalf("sink type %s", sink.Type)
			}
			if len(a.Warnings) != 0 {
				t.Fatalf("warnings: %v", a.Warnings)
			}
		})
	}
}

const twoAgents = `# two agents in one file
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sinkgroups = g1

a1.sources.r1.type = org.apache.flume.source.NetcatSource
a1.sources.r1.bind = ${env:BIND}
a1.sources.r1.port : 44444
a1.sources.r1.channels = c1 \
                         c2
a1.sources.r1.selector.type = replicating
a1.sources.r1.selector.optional = c2
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = static
a1.sources.r1.interceptors.i2.key = dc
a1.sources.r2.type seq
a1.sources.r2.batchSize = 10
a1.sources.r2.channels = c2

! a comment in Java's other style
a1.channels.c1.type = org.apache.flume.channel.MemoryChannel
a1.channels.c1.byteCapacity = 1000000
a1.channels.c2.type = file
a1.channels.c2.checkpointDir = ${env:DATA}/checkpoint
a1.channels.c2.dataDirs = ${env:DATA}/data

a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
a1.sinkgroups.g1.sinks = k2
a1.sinkgroups.g1.processor.type = default

a2.sources = s
a2.channels = m
a2.sinks = k
a2.sources.s.type = seq
a2.sources.s.channels = m
a2.channels.m.type = memory
a2.sinks.k.type = null
a2.sinks.k.channel = m
a2.sinks.k.batchSize = 50
a2.sinks.stray.type = null
`

func TestSeveralAgentsContinuationsEnvAndAliases(t *testing.T) {
	a := mustParse(t, twoAgents, "a1", map[string]string{"BIND": "127.0.0.1", "DATA": "/var/flume"})
	r1 := a.Sources[0]
	if r1.Type != "netcat" || r1.String("bind") != "127.0.0.1" || r1.Int("port") != 44444 {
		t.Fatalf("r1 %+v", r1)
	}
	if strings.Join(r1.Channels, ",") != "c1,c2" || strings.Join(r1.Selector.Optional, ",") != "c2" {
		t.Fatalf("r1 channels %v optional %v", r1.Channels, r1.Selector.Optional)
	}
	if len(r1.Interceptors) != 2 || r1.Interceptors[1].Type != "static" || r1.Interceptors[1].Params["key"].Value != "dc" {
		t.Fatalf("interceptors %+v", r1.Interceptors)
	}
	if a.Sources[1].BatchSize() != 10 {
		t.Fatalf("seq batch %d", a.Sources[1].BatchSize())
	}
	c1, c2 := a.Channels[0], a.Channels[1]
	if c1.Type != "memory" || c1.Int("byteCapacity") != 1000000 || c2.String("dataDirs") != "/var/flume/data" || c2.Int("capacity") != 1000000 {
		t.Fatalf("channels %+v %+v", c1, c2)
	}
	if len(a.SinkGroups) != 1 || a.SinkGroups[0].Processor != "default" || a.SinkGroups[0].Sinks[0] != "k2" {
		t.Fatalf("sink groups %+v", a.SinkGroups)
	}
	a2 := mustParse(t, twoAgents, "a2", nil)
	if a2.Sinks[0].BatchSize() != 50 || len(a2.Warnings) != 1 || !strings.Contains(a2.Warnings[0], "a2.sinks.stray") {
		t.Fatalf("a2: batch %d warnings %v", a2.Sinks[0].BatchSize(), a2.Warnings)
	}
}

func TestPropertiesEscapesAndLastValueWins(t *testing.T) {
	props, err := ReadProperties("k\\ 1 = a\\tb\\u0041\nk2=x\\\\\nk2 = y\n  # indented comment\nk3=one \\\n   two\n")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Property{}
	for _, p := range props {
		got[p.Key] = p
	}
	if got["k 1"].Value != "a\tbA" || got["k2"].Value != "y" || got["k2"].Line != 3 || got["k3"].Value != "one two" || got["k3"].Line != 5 {
		t.Fatalf("%+v", got)
	}
}

// The error classes: each test plants one mistake and checks that the
// error names its line and key.

const validBase = `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = localhost
a1.sources.r1.port = 4141
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.transactionCapacity = 50
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
`

func expectError(t *testing.T, text string, line int, key, fragment string) {
	t.Helper()
	_, err := Parse(text, "a1", mapEnv(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want a configuration error, got %v", err)
	}
	for _, e := range es {
		if e.Line == line && e.Key == key && strings.Contains(e.Msg, fragment) {
			return
		}
	}
	t.Fatalf("want an error at line %d about %s containing %q; got:\n%v", line, key, fragment, err)
}

func replaceLine(text string, line int, with string) string {
	lines := strings.Split(text, "\n")
	lines[line-1] = with
	return strings.Join(lines, "\n")
}

func TestBaseConfigIsValid(t *testing.T) { mustParse(t, validBase, "a1", nil) }

func TestUnknownType(t *testing.T) {
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = org.apache.flume.sink.Hdfs"), 10, "a1.sinks.k1.type", "unknown sink type")
	expectError(t, replaceLine(validBase, 8, "a1.channels.c1.type = jdbcx"), 8, "a1.channels.c1.type", "unknown channel type")
}

func TestMissingType(t *testing.T) {
	expectError(t, replaceLine(validBase, 4, "# no type"), 1, "a1.sources.r1.type", "missing required key")
}

func TestUnknownChannel(t *testing.T) {
	expectError(t, replaceLine(validBase, 11, "a1.sinks.k1.channel = c9"), 11, "a1.sinks.k1.channel", "unknown channel c9")
	expectError(t, replaceLine(validBase, 7, "a1.sources.r1.channels = c1 c7"), 7, "a1.sources.r1.channels", "unknown channel c7")
}

func TestDanglingChannelListedButNotDefined(t *testing.T) {
	// c2 is listed and used but never given a type.
	text := replaceLine(validBase, 2, "a1.channels = c1 c2")
	text = replaceLine(text, 11, "a1.sinks.k1.channel = c2")
	expectError(t, text, 2, "a1.channels.c2.type", "missing required key")
}

func TestMissingSinkChannel(t *testing.T) {
	expectError(t, replaceLine(validBase, 11, ""), 3, "a1.sinks.k1.channel", "missing required key")
}

func TestMissingRequiredKey(t *testing.T) {
	expectError(t, replaceLine(validBase, 6, ""), 1, "a1.sources.r1.port", "missing required key")
}

func TestBadNumber(t *testing.T) {
	expectError(t, replaceLine(validBase, 6, "a1.sources.r1.port = 41x41"), 6, "a1.sources.r1.port", "not a whole number")
	expectError(t, replaceLine(validBase, 6, "a1.sources.r1.port = 70000"), 6, "a1.sources.r1.port", "outside 0..65535")
	expectError(t, replaceLine(validBase, 7, "a1.sources.r1.channels = c1\na1.sources.r1.ack-every-event = yes"),
		8, "a1.sources.r1.ack-every-event", "not true or false")
}

func TestBatchLargerThanTransactionCapacity(t *testing.T) {
	text := replaceLine(validBase, 10, "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 51")
	expectError(t, text, 11, "a1.sinks.k1.batchSize", "larger than channel c1's transactionCapacity 50")
}

func TestTransactionCapacityLargerThanCapacity(t *testing.T) {
	expectError(t, replaceLine(validBase, 9, "a1.channels.c1.transactionCapacity = 500"), 9,
		"a1.channels.c1.transactionCapacity", "larger than capacity 100")
}

func TestUnsetEnvironmentVariable(t *testing.T) {
	expectError(t, replaceLine(validBase, 5, "a1.sources.r1.bind = ${env:NOPE}"), 5, "a1.sources.r1.bind", "NOPE is not set")
}

func TestSelectorChannelOutsideSource(t *testing.T) {
	expectError(t, replaceLine(validBase, 7, "a1.sources.r1.channels = c1\na1.sources.r1.selector.optional = c3"),
		8, "a1.sources.r1.selector.optional", "not one of the source's channels")
}

func TestSinkGroupErrors(t *testing.T) {
	text := validBase + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k8\na1.sinkgroups.g1.processor.type = roundabout\n"
	expectError(t, text, 13, "a1.sinkgroups.g1.sinks", "unknown sink k8")
	expectError(t, text, 14, "a1.sinkgroups.g1.processor.type", "unknown sink processor")
}

func TestUnknownAgentNamesTheKnownOnes(t *testing.T) {
	_, err := Parse(twoAgents, "agent7", nil)
	if err == nil || !strings.Contains(err.Error(), "agents: a1, a2") {
		t.Fatalf("got %v", err)
	}
}

func TestDuplicateInList(t *testing.T) {
	expectError(t, replaceLine(validBase, 3, "a1.sinks = k1 k1"), 3, "a1.sinks", "listed twice")
}

func TestSinkProcessorKeys(t *testing.T) {
	text := validBase + "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\na1.sinkgroups.g1.processor.type = failover\n" +
		"a1.sinkgroups.g1.processor.priority.k7 = 5\na1.sinkgroups.g1.processor.maxpenalty = soon\n" +
		"a1.sinkgroups.g1.processor.selector = fastest\n"
	expectError(t, text, 15, "a1.sinkgroups.g1.processor.priority.k7", "sink k7 is not in the group")
	expectError(t, text, 16, "a1.sinkgroups.g1.processor.maxpenalty", "not a whole number")
	expectError(t, text, 17, "a1.sinkgroups.g1.processor.selector", "not one of round_robin, random")
	ok := mustParse(t, validBase+"a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\na1.sinkgroups.g1.processor.type = failover\n"+
		"a1.sinkgroups.g1.processor.priority.k1 = 5\n", "a1", nil)
	if g := ok.SinkGroups[0]; g.Int("priority.k1", 0) != 5 || g.Int("maxpenalty", 30000) != 30000 {
		t.Fatalf("group %+v", g)
	}
}

// TestNewComponentErrors checks the line and key named for the hop, file,
// http and syslog components and the spillable channel.
func TestNewComponentErrors(t *testing.T) {
	// The avro sink's batch key is batch-size, checked against the channel.
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = avro\na1.sinks.k1.hostname = next\na1.sinks.k1.port = 4545\na1.sinks.k1.batch-size = 51"),
		13, "a1.sinks.k1.batch-size", "larger than channel c1's transactionCapacity 50")
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = avro\na1.sinks.k1.port = 4545"), 3, "a1.sinks.k1.hostname", "missing required key")
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = hdfs\na1.sinks.k1.hdfs.path = /x\na1.sinks.k1.hdfs.roundUnit = day"),
		12, "a1.sinks.k1.hdfs.roundUnit", `"day" is not one of second, minute, hour`)
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = file_roll"), 3, "a1.sinks.k1.sink.directory", "missing required key")
	expectError(t, replaceLine(validBase, 10, "a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = /out\na1.sinks.k1.sink.rollInterval = soon"),
		12, "a1.sinks.k1.sink.rollInterval", "not a whole number")
	// Sources: replace the netcat source's type line and its keys.
	src := func(lines string) string {
		text := replaceLine(validBase, 4, lines)
		text = replaceLine(text, 5+strings.Count(lines, "\n"), "")
		return replaceLine(text, 6+strings.Count(lines, "\n"), "")
	}
	expectError(t, src("a1.sources.r1.type = spooldir"), 1, "a1.sources.r1.spoolDir", "missing required key")
	expectError(t, src("a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = /in\na1.sources.r1.deletePolicy = later"),
		6, "a1.sources.r1.deletePolicy", `"later" is not one of never, immediate`)
	expectError(t, src("a1.sources.r1.type = TAILDIR"), 1, "a1.sources.r1.filegroups", "missing required key")
	expectError(t, src("a1.sources.r1.type = TAILDIR\na1.sources.r1.filegroups = f1\na1.sources.r1.batchSize = 51"),
		6, "a1.sources.r1.batchSize", "larger than channel c1's transactionCapacity 50")
	expectError(t, src("a1.sources.r1.type = http\na1.sources.r1.port = http"), 5, "a1.sources.r1.port", "not a whole number")
	expectError(t, src("a1.sources.r1.type = syslogtcp\na1.sources.r1.port = 514"), 1, "a1.sources.r1.host", "missing required key")
	expectError(t, src("a1.sources.r1.type = syslogudp\na1.sources.r1.host = 0.0.0.0\na1.sources.r1.port = 514\na1.sources.r1.keepFields = maybe"),
		7, "a1.sources.r1.keepFields", "not true or false")
	expectError(t, src("a1.sources.r1.type = avro\na1.sources.r1.bind = 0.0.0.0"), 1, "a1.sources.r1.port", "missing required key")
	// The spillable channel's capacity is memory and overflow together.
	expectError(t, replaceLine(validBase, 8, "a1.channels.c1.type = SPILLABLEMEMORY\na1.channels.c1.memoryCapacity = 10\na1.channels.c1.overflowCapacity = 20"),
		11, "a1.channels.c1.transactionCapacity", "larger than capacity 30")
	a := mustParse(t, replaceLine(validBase, 8, "a1.channels.c1.type = org.apache.flume.channel.SpillableMemoryChannel"), "a1", nil)
	if c := a.Channels[0]; c.Type != "SPILLABLEMEMORY" || c.Int("memoryCapacity") != 10000 || c.Int("overflowCapacity") != 100000000 {
		t.Fatalf("spillable defaults: %+v", c)
	}
}

// TestExecSourceKeys: the exec source's required command, its numbers,
// its batch against the channel, its one charset, and Flume's class name.
func TestExecSourceKeys(t *testing.T) {
	src := func(lines string) string {
		text := replaceLine(validBase, 4, lines)
		text = replaceLine(text, 5+strings.Count(lines, "\n"), "")
		return replaceLine(text, 6+strings.Count(lines, "\n"), "")
	}
	expectError(t, src("a1.sources.r1.type = exec"), 1, "a1.sources.r1.command", "missing required key")
	expectError(t, src("a1.sources.r1.type = exec\na1.sources.r1.command = seq 10\na1.sources.r1.restartThrottle = 10s"),
		6, "a1.sources.r1.restartThrottle", "not a whole number")
	expectError(t, src("a1.sources.r1.type = exec\na1.sources.r1.command = seq 10\na1.sources.r1.restart = yes"),
		6, "a1.sources.r1.restart", "not true or false")
	expectError(t, src("a1.sources.r1.type = exec\na1.sources.r1.command = seq 10\na1.sources.r1.batchSize = 51"),
		6, "a1.sources.r1.batchSize", "larger than channel c1's transactionCapacity 50")
	expectError(t, src("a1.sources.r1.type = exec\na1.sources.r1.command = seq 10\na1.sources.r1.batchTimeout = 0"),
		6, "a1.sources.r1.batchTimeout", "outside 1..")
	expectError(t, src("a1.sources.r1.type = exec\na1.sources.r1.command = seq 10\na1.sources.r1.charset = ISO-8859-1"),
		6, "a1.sources.r1.charset", `"ISO-8859-1" is not one of UTF-8`)
	a := mustParse(t, src("a1.sources.r1.type = org.apache.flume.source.ExecSource\na1.sources.r1.command = tail -F /var/log/x\na1.sources.r1.shell = /bin/bash -c"), "a1", nil)
	s := a.Sources[0]
	if s.Type != "exec" || s.String("command") != "tail -F /var/log/x" || s.String("shell") != "/bin/bash -c" ||
		s.BatchSize() != 20 || s.Int("batchTimeout") != 3000 || s.Int("restartThrottle") != 10000 || s.Bool("restart") || s.Bool("logStdErr") {
		t.Fatalf("exec source %+v", s)
	}
}

// TestFileChannelDataDirs: Flume's comma-separated dataDirs load, spaces
// around the commas allowed; an empty entry or a directory named twice is
// refused on its line.
func TestFileChannelDataDirs(t *testing.T) {
	fileChannel := func(dataDirs string) string {
		return replaceLine(validBase, 8, "a1.channels.c1.type = file\na1.channels.c1.dataDirs = "+dataDirs)
	}
	a := mustParse(t, fileChannel("a, b"), "a1", nil)
	if got := a.Channels[0].String("dataDirs"); got != "a, b" {
		t.Fatalf("dataDirs %q", got)
	}
	expectError(t, fileChannel("/d1,,/d2"), 9, "a1.channels.c1.dataDirs", "data directory 2 of 3 is empty")
	expectError(t, fileChannel("/d1, /d1"), 9, "a1.channels.c1.dataDirs", `"/d1" is named twice`)
	spillable := replaceLine(validBase, 8, "a1.channels.c1.type = SPILLABLEMEMORY\na1.channels.c1.dataDirs = /d1,")
	expectError(t, spillable, 9, "a1.channels.c1.dataDirs", "data directory 2 of 2 is empty")
}
