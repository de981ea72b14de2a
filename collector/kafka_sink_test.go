package collector

import (
	"testing"

	"github.com/sluice-sim/sluice/collector/config"
)

// TestKafkaSinkTopicOverride: by default the "topic" header (or the one
// topicHeader names) overrides the sink's topic, as in Flume;
// allowTopicOverride = false turns that off, which an agent reading a
// kafka source needs, or its events go back to the topic they came from.
func TestKafkaSinkTopicOverride(t *testing.T) {
	for _, tc := range []struct {
		extra, header string
	}{
		{"", "topic"},
		{"a1.sinks.k1.topicHeader = dest\n", "dest"},
		{"a1.sinks.k1.allowTopicOverride = false\n", ""},
	} {
		text := "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n" +
			"a1.sources.r1.type = netcat\na1.sources.r1.bind = 0.0.0.0\na1.sources.r1.port = 1\na1.sources.r1.channels = c1\n" +
			"a1.channels.c1.type = memory\n" +
			"a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\na1.sinks.k1.kafka.bootstrap.servers = m1:9092\n" +
			"a1.sinks.k1.kafka.topic = out\na1.sinks.k1.channel = c1\n" + tc.extra
		cfg, err := config.Parse(text, "a1", nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		got := kafkaSinkConfig(cfg.Sinks[0])
		if got.Topic != "out" || got.TopicHeader != tc.header {
			t.Fatalf("%q: topic %q, header %q; want out, %q", tc.extra, got.Topic, got.TopicHeader, tc.header)
		}
	}
}
