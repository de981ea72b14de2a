package config

import "math"

// Kind is what a component is.
type Kind string

// Component kinds.
const (
	KindSource  Kind = "source"
	KindChannel Kind = "channel"
	KindSink    Kind = "sink"
)

// keySpec says what one key of a component type holds.
type keySpec struct {
	kind     valueKind
	min, max int64
	// def is the default of an integer or boolean key (booleans: 0 or 1)
	// and text is the default of a string key.
	def  int64
	text string
	// choices, when set, are the values a string key may take.
	choices []string
}

type valueKind uint8

const (
	valueString valueKind = iota
	valueInt
	valueBool
)

// typeSpec is what sluice knows of one component type.
type typeSpec struct {
	kind Kind
	name string
	// aliases are Flume's class names for the type.
	aliases []string
	// required keys must be present; requiredOneOf needs at least one of
	// each group (a key and its deprecated spelling).
	required      []string
	requiredOneOf [][]string
	keys          map[string]keySpec
	// batchKeys are the keys naming a batch that one channel transaction
	// carries, which must not exceed the channel's transactionCapacity.
	batchKeys []string
}

func intKey(def, lo, hi int64) keySpec { return keySpec{kind: valueInt, def: def, min: lo, max: hi} }
func boolKey(def bool) keySpec {
	if def {
		return keySpec{kind: valueBool, def: 1}
	}
	return keySpec{kind: valueBool}
}
func stringKey(def string) keySpec { return keySpec{kind: valueString, text: def} }

const (
	unbounded = math.MaxInt64
	// batchMax bounds every batch and transaction: a transaction's events
	// are held in memory.
	batchMax = 1 << 20
)

// specs are the component types sluice runs, with Flume 1.11's defaults.
var specs = []typeSpec{
	{
		kind: KindSource, name: "netcat", aliases: []string{"org.apache.flume.source.NetcatSource"},
		required: []string{"bind", "port"},
		keys: map[string]keySpec{
			"bind":            stringKey(""),
			"port":            intKey(0, 0, 65535),
			"max-line-length": intKey(512, 1, 1<<20),
			"ack-every-event": boolKey(true),
		},
	},
	{
		kind: KindSource, name: "exec", aliases: []string{"org.apache.flume.source.ExecSource"},
		required: []string{"command"},
		keys: map[string]keySpec{
			"command":         stringKey(""),
			"shell":           stringKey(""),
			"restartThrottle": intKey(10000, 0, unbounded),
			"restart":         boolKey(false),
			"logStdErr":       boolKey(false),
			"batchSize":       intKey(20, 1, batchMax),
			"batchTimeout":    intKey(3000, 1, unbounded),
			"charset":         {kind: valueString, text: "UTF-8", choices: []string{"UTF-8"}},
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSource, name: "seq", aliases: []string{"org.apache.flume.source.SequenceGeneratorSource"},
		keys: map[string]keySpec{
			"batchSize":   intKey(1, 1, batchMax),
			"totalEvents": intKey(unbounded, 0, unbounded),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSource, name: "avro", aliases: []string{"org.apache.flume.source.AvroSource"},
		required: []string{"bind", "port"},
		keys: map[string]keySpec{
			"bind":             stringKey(""),
			"port":             intKey(0, 0, 65535),
			"threads":          intKey(0, 0, 1<<16),
			"compression-type": {kind: valueString, text: "none", choices: []string{"none"}},
		},
	},
	{
		kind: KindSource, name: "http", aliases: []string{"org.apache.flume.source.http.HTTPSource"},
		required: []string{"port"},
		keys: map[string]keySpec{
			"bind":      stringKey("0.0.0.0"),
			"port":      intKey(0, 0, 65535),
			"handler":   {kind: valueString, text: "org.apache.flume.source.http.JSONHandler", choices: []string{"org.apache.flume.source.http.JSONHandler"}},
			"enableSSL": {kind: valueBool},
			"ssl":       {kind: valueBool},
		},
	},
	{
		kind: KindSource, name: "syslogtcp", aliases: []string{"org.apache.flume.source.SyslogTcpSource"},
		required: []string{"host", "port"},
		keys: map[string]keySpec{
			"host":       stringKey(""),
			"port":       intKey(0, 0, 65535),
			"eventSize":  intKey(2500, 1, 1<<20),
			"keepFields": boolKey(false),
		},
	},
	{
		kind: KindSource, name: "syslogudp", aliases: []string{"org.apache.flume.source.SyslogUDPSource"},
		required: []string{"host", "port"},
		keys: map[string]keySpec{
			"host":       stringKey(""),
			"port":       intKey(0, 0, 65535),
			"keepFields": boolKey(false),
		},
	},
	{
		kind: KindSource, name: "netcatudp", aliases: []string{"org.apache.flume.source.NetcatUdpSource"},
		required: []string{"bind", "port"},
		keys: map[string]keySpec{
			"bind":                stringKey(""),
			"port":                intKey(0, 0, 65535),
			"remoteAddressHeader": stringKey(""),
		},
	},
	{
		kind: KindSource, name: "spooldir", aliases: []string{"org.apache.flume.source.SpoolDirectorySource"},
		required: []string{"spoolDir"},
		keys: map[string]keySpec{
			"spoolDir":                   stringKey(""),
			"fileSuffix":                 stringKey(".COMPLETED"),
			"deletePolicy":               {kind: valueString, text: "never", choices: []string{"never", "immediate"}},
			"fileHeader":                 boolKey(false),
			"fileHeaderKey":              stringKey("file"),
			"basenameHeader":             boolKey(false),
			"basenameHeaderKey":          stringKey("basename"),
			"includePattern":             stringKey("^.*$"),
			"ignorePattern":              stringKey("^$"),
			"trackerDir":                 stringKey(".flumespool"),
			"consumeOrder":               {kind: valueString, text: "oldest", choices: []string{"oldest", "youngest", "random"}},
			"pollDelay":                  intKey(500, 1, unbounded),
			"maxBackoff":                 intKey(4000, 1, unbounded),
			"batchSize":                  intKey(100, 1, batchMax),
			"deserializer":               {kind: valueString, text: "LINE", choices: []string{"LINE"}},
			"deserializer.maxLineLength": intKey(2048, 1, 1<<20),
			"inputCharset":               stringKey("UTF-8"),
			"recursiveDirectorySearch":   boolKey(false),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSource, name: "TAILDIR", aliases: []string{"taildir", "org.apache.flume.source.taildir.TaildirSource"},
		required: []string{"filegroups"},
		keys: map[string]keySpec{
			"filegroups":            stringKey(""),
			"positionFile":          stringKey("~/.flume/taildir_position.json"),
			"batchSize":             intKey(100, 1, batchMax),
			"writePosInterval":      intKey(3000, 1, unbounded),
			"skipToEnd":             boolKey(false),
			"idleTimeout":           intKey(120000, 0, unbounded),
			"backoffSleepIncrement": intKey(1000, 1, unbounded),
			"maxBackoffSleep":       intKey(5000, 1, unbounded),
			"cachePatternMatching":  boolKey(true),
			"fileHeader":            boolKey(false),
			"fileHeaderKey":         stringKey("file"),
			"byteOffsetHeader":      boolKey(false),
			"maxBatchCount":         intKey(unbounded, 1, unbounded),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSource, name: "kafka", aliases: []string{"org.apache.flume.source.kafka.KafkaSource"},
		required:      []string{"kafka.bootstrap.servers"},
		requiredOneOf: [][]string{{"kafka.topics", "kafka.topics.regex", "topic"}},
		keys: map[string]keySpec{
			"kafka.bootstrap.servers":           stringKey(""),
			"kafka.topics":                      stringKey(""),
			"topic":                             stringKey(""),
			"groupId":                           stringKey(""),
			"kafka.topics.regex":                stringKey(""),
			"kafka.consumer.group.id":           stringKey("flume"),
			"batchSize":                         intKey(1000, 1, batchMax),
			"batchDurationMillis":               intKey(1000, 1, unbounded),
			"kafka.consumer.auto.offset.reset":  {kind: valueString, text: "latest", choices: []string{"earliest", "latest", "none"}},
			"kafka.consumer.session.timeout.ms": intKey(10000, 1, unbounded),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindChannel, name: "memory", aliases: []string{"org.apache.flume.channel.MemoryChannel"},
		keys: map[string]keySpec{
			"capacity":                     intKey(100, 1, math.MaxInt32),
			"transactionCapacity":          intKey(100, 1, batchMax),
			"keep-alive":                   intKey(3, 0, 3600),
			"byteCapacity":                 intKey(0, 0, unbounded),
			"byteCapacityBufferPercentage": intKey(20, 0, 100),
		},
	},
	{
		kind: KindChannel, name: "file", aliases: []string{"org.apache.flume.channel.file.FileChannel"},
		keys: map[string]keySpec{
			"checkpointDir":        stringKey("~/.flume/file-channel/checkpoint"),
			"dataDirs":             stringKey("~/.flume/file-channel/data"),
			"capacity":             intKey(1000000, 1, math.MaxInt32),
			"transactionCapacity":  intKey(10000, 1, batchMax),
			"checkpointInterval":   intKey(30000, 1, unbounded),
			"maxFileSize":          intKey(2146435071, 1024, 2146435071),
			"minimumRequiredSpace": intKey(524288000, 0, unbounded),
			"keep-alive":           intKey(3, 0, 3600),
			"useDualCheckpoints":   boolKey(false),
			"backupCheckpointDir":  stringKey(""),
		},
	},
	{
		kind: KindChannel, name: "SPILLABLEMEMORY", aliases: []string{"spillablememory", "org.apache.flume.channel.SpillableMemoryChannel"},
		keys: map[string]keySpec{
			"memoryCapacity":                intKey(10000, 0, math.MaxInt32),
			"overflowCapacity":              intKey(100000000, 0, math.MaxInt32),
			"overflowTimeout":               intKey(3, 0, 3600),
			"overflowDeactivationThreshold": intKey(5, 0, 100),
			"byteCapacityBufferPercentage":  intKey(20, 0, 100),
			"byteCapacity":                  intKey(0, 0, unbounded),
			"avgEventSize":                  intKey(500, 1, unbounded),
			"transactionCapacity":           intKey(100, 1, batchMax),
			"keep-alive":                    intKey(3, 0, 3600),
			"checkpointDir":                 stringKey("~/.flume/file-channel/checkpoint"),
			"dataDirs":                      stringKey("~/.flume/file-channel/data"),
			"checkpointInterval":            intKey(30000, 1, unbounded),
			"maxFileSize":                   intKey(2146435071, 1024, 2146435071),
			"minimumRequiredSpace":          intKey(524288000, 0, unbounded),
			"useDualCheckpoints":            boolKey(false),
			"backupCheckpointDir":           stringKey(""),
		},
	},
	{
		kind: KindChannel, name: "kafka", aliases: []string{"org.apache.flume.channel.kafka.KafkaChannel"},
		requiredOneOf: [][]string{{"kafka.bootstrap.servers", "brokerList"}},
		keys: map[string]keySpec{
			"kafka.bootstrap.servers":           stringKey(""),
			"brokerList":                        stringKey(""),
			"topic":                             stringKey(""),
			"groupId":                           stringKey(""),
			"kafka.topic":                       stringKey("flume-channel"),
			"kafka.consumer.group.id":           stringKey("flume"),
			"parseAsFlumeEvent":                 boolKey(true),
			"pollTimeout":                       intKey(500, 1, unbounded),
			"kafka.consumer.session.timeout.ms": intKey(10000, 1, unbounded),
			"kafka.consumer.auto.offset.reset":  {kind: valueString, text: "earliest", choices: []string{"earliest"}},
			// Not Flume's: the topic has no capacity, but sluice's
			// channels bound what they hold in memory (the read-ahead and
			// the puts in flight) and what one transaction carries.
			"capacity":            intKey(math.MaxInt32, 1, math.MaxInt32),
			"transactionCapacity": intKey(10000, 1, batchMax),
		},
	},
	{
		kind: KindSink, name: "logger", aliases: []string{"org.apache.flume.sink.LoggerSink"},
		keys: map[string]keySpec{
			"maxBytesToLog": intKey(16, 0, 1<<20),
			"batchSize":     intKey(1, 1, batchMax),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSink, name: "null", aliases: []string{"org.apache.flume.sink.NullSink"},
		keys: map[string]keySpec{
			"batchSize": intKey(100, 1, batchMax),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSink, name: "avro", aliases: []string{"org.apache.flume.sink.AvroSink"},
		required: []string{"hostname", "port"},
		keys: map[string]keySpec{
			"hostname":                  stringKey(""),
			"port":                      intKey(0, 1, 65535),
			"batch-size":                intKey(100, 1, batchMax),
			"connect-timeout":           intKey(20000, 1, unbounded),
			"request-timeout":           intKey(20000, 1, unbounded),
			"reset-connection-interval": intKey(0, 0, unbounded),
			"compression-type":          {kind: valueString, text: "none", choices: []string{"none"}},
		},
		batchKeys: []string{"batch-size"},
	},
	{
		kind: KindSink, name: "file_roll", aliases: []string{"org.apache.flume.sink.RollingFileSink"},
		required: []string{"sink.directory"},
		keys: map[string]keySpec{
			"sink.directory":                stringKey(""),
			"sink.rollInterval":             intKey(30, 0, unbounded),
			"sink.pathManager":              {kind: valueString, text: "DEFAULT", choices: []string{"DEFAULT"}},
			"sink.pathManager.prefix":       stringKey(""),
			"sink.pathManager.extension":    stringKey(""),
			"sink.serializer":               {kind: valueString, text: "TEXT", choices: []string{"TEXT"}},
			"sink.serializer.appendNewline": boolKey(true),
			"sink.batchSize":                intKey(100, 1, batchMax),
			"batchSize":                     intKey(100, 1, batchMax),
		},
		batchKeys: []string{"sink.batchSize", "batchSize"},
	},
	{
		kind: KindSink, name: "hdfs", aliases: []string{"org.apache.flume.sink.hdfs.HDFSEventSink"},
		required: []string{"hdfs.path"},
		keys: map[string]keySpec{
			"hdfs.path":              stringKey(""),
			"hdfs.filePrefix":        stringKey("FlumeData"),
			"hdfs.fileSuffix":        stringKey(""),
			"hdfs.inUsePrefix":       stringKey(""),
			"hdfs.inUseSuffix":       stringKey(".tmp"),
			"hdfs.rollInterval":      intKey(30, 0, unbounded),
			"hdfs.rollSize":          intKey(1024, 0, unbounded),
			"hdfs.rollCount":         intKey(10, 0, unbounded),
			"hdfs.idleTimeout":       intKey(0, 0, unbounded),
			"hdfs.batchSize":         intKey(100, 1, batchMax),
			"hdfs.maxOpenFiles":      intKey(5000, 1, 1<<20),
			"hdfs.useLocalTimeStamp": boolKey(false),
			"hdfs.round":             boolKey(false),
			"hdfs.roundValue":        intKey(1, 1, unbounded),
			"hdfs.roundUnit":         {kind: valueString, text: "second", choices: []string{"second", "minute", "hour"}},
			"hdfs.timeZone":          {kind: valueString, text: "UTC", choices: []string{"UTC"}},
			"hdfs.fileType":          {kind: valueString, text: "DataStream", choices: []string{"DataStream", "SequenceFile", "CompressedStream"}},
			"hdfs.writeFormat":       {kind: valueString, text: "Writable", choices: []string{"Writable", "Text"}},
			"hdfs.callTimeout":       intKey(10000, 1, unbounded),
		},
		batchKeys: []string{"hdfs.batchSize"},
	},
	{
		kind: KindSink, name: "http", aliases: []string{"org.apache.flume.sink.http.HttpSink"},
		required: []string{"endpoint"},
		keys: map[string]keySpec{
			"endpoint":                stringKey(""),
			"connectTimeout":          intKey(5000, 1, unbounded),
			"requestTimeout":          intKey(5000, 1, unbounded),
			"contentTypeHeader":       stringKey("text/plain"),
			"acceptHeader":            stringKey("text/plain"),
			"defaultBackoff":          boolKey(true),
			"defaultRollback":         boolKey(true),
			"defaultIncrementMetrics": boolKey(false),
			"batchSize":               intKey(1, 1, batchMax),
		},
		batchKeys: []string{"batchSize"},
	},
	{
		kind: KindSink, name: "kafka", aliases: []string{"org.apache.flume.sink.kafka.KafkaSink"},
		requiredOneOf: [][]string{{"kafka.bootstrap.servers", "brokerList"}},
		keys: map[string]keySpec{
			"kafka.bootstrap.servers": stringKey(""),
			"brokerList":              stringKey(""),
			"kafka.topic":             stringKey(""),
			"topic":                   stringKey("default-flume-topic"),
			"flumeBatchSize":          intKey(100, 1, batchMax),
			"batchSize":               intKey(100, 1, batchMax),
			"kafka.producer.acks":     {kind: valueString, text: "1", choices: []string{"all", "-1", "0", "1"}},
			"requiredAcks":            {kind: valueString, text: "1", choices: []string{"all", "-1", "0", "1"}},
			"allowTopicOverride":      boolKey(true),
			"topicHeader":             stringKey("topic"),
		},
		batchKeys: []string{"flumeBatchSize", "batchSize"},
	},
}

// lookupSpec finds a type by its short name or Flume class name.
func lookupSpec(kind Kind, name string) (*typeSpec, bool) {
	for i := range specs {
		s := &specs[i]
		if s.kind != kind {
			continue
		}
		if s.name == name {
			return s, true
		}
		for _, a := range s.aliases {
			if a == name {
				return s, true
			}
		}
	}
	return nil, false
}

// TypeNames lists the short names of a kind's types, for messages.
func TypeNames(kind Kind) []string {
	var out []string
	for _, s := range specs {
		if s.kind == kind {
			out = append(out, s.name)
		}
	}
	return out
}

// Selector and sink processor types: parsed and checked; which of them run
// is the agent's business.
var (
	selectorTypes  = []string{"replicating", "multiplexing"}
	processorTypes = []string{"default", "failover", "load_balance"}
)
