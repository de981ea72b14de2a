package scenario

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestCompareChannels runs six seeds against the memory and file
// channels: every channel sees the same fault schedule per seed, the file
// channel loses nothing, the memory channel loses acknowledged lines in
// some seed, and the rows account for every run.
func TestCompareChannels(t *testing.T) {
	schedules := map[uint64][]string{}
	unackedLost := map[string]int64{}
	opts := ChannelCompareOptions{Seed: 1, Seeds: 6, Channels: []string{"memory", "file"},
		Progress: func(channel string, r Result) {
			unackedLost[channel] += r.Stats["unacked_lost"]
			data, err := json.Marshal(r.Schedule)
			if err != nil {
				t.Fatal(err)
			}
			if r.Params["channel"] != channel {
				t.Errorf("seed %d ran channel %s for %s", r.Seed, r.Params["channel"], channel)
			}
			schedules[r.Seed] = append(schedules[r.Seed], string(data))
		}}
	rows, err := CompareChannels(opts)
	if err != nil {
		t.Fatal(err)
	}
	for seed, s := range schedules {
		if len(s) != 2 || s[0] != s[1] || len(s[0]) < 10 {
			t.Fatalf("seed %d: the channels ran different schedules: %v", seed, s)
		}
	}
	if len(schedules) != 6 || len(rows) != 2 || rows[0].Channel != "memory" || rows[1].Channel != "file" {
		t.Fatalf("rows %+v", rows)
	}
	memory, file := rows[0], rows[1]
	for _, r := range rows {
		if r.Seeds != 6 || r.Acked == 0 || r.AckedPerSec <= 0 || len(r.TraceHashes) != 6 ||
			r.LatencyP50Ms <= 0 || r.LatencyP50Ms > r.LatencyP99Ms || r.LatencyP99Ms > r.LatencyP999Ms {
			t.Fatalf("row %+v", r)
		}
		if r.UnackedLost != unackedLost[r.Channel] {
			t.Fatalf("%s row counts %d unacknowledged lines lost, its runs %d", r.Channel, r.UnackedLost, unackedLost[r.Channel])
		}
	}
	if file.Lost != 0 || file.SeedsLosing != 0 || len(file.FailedChecks) != 0 {
		t.Fatalf("the file channel lost lines or failed checks: %+v", file)
	}
	if memory.Lost == 0 || memory.SeedsLosing == 0 || memory.FailedChecks["acknowledged-delivered"] != memory.SeedsLosing ||
		!strings.Contains(memory.FailedChecksText(), "acknowledged-delivered ×") {
		t.Fatalf("the memory channel lost nothing in six crashing seeds: %+v", memory)
	}
	// A file channel's commit waits for an fsync; a memory channel's
	// does not.
	if file.LatencyP99Ms <= memory.LatencyP99Ms {
		t.Fatalf("file p99 %.3f ms not above memory's %.3f ms", file.LatencyP99Ms, memory.LatencyP99Ms)
	}
}

// TestCompareChannelsKafka: the kafka channel's row, against the
// simulated broker, under the same schedules as the file channel's: it
// loses nothing and its runs are deterministic.
func TestCompareChannelsKafka(t *testing.T) {
	schedules := map[uint64][]string{}
	opts := ChannelCompareOptions{Seed: 11, Seeds: 3, Channels: []string{"file", "kafka"},
		Progress: func(channel string, r Result) {
			data, _ := json.Marshal(r.Schedule)
			schedules[r.Seed] = append(schedules[r.Seed], string(data))
		}}
	rows, err := CompareChannels(opts)
	if err != nil {
		t.Fatal(err)
	}
	for seed, s := range schedules {
		if len(s) != 2 || s[0] != s[1] {
			t.Fatalf("seed %d: the channels ran different schedules", seed)
		}
	}
	kafka := rows[1]
	if kafka.Channel != "kafka" || kafka.Seeds != 3 || kafka.Acked == 0 || kafka.Lost != 0 || len(kafka.FailedChecks) != 0 ||
		kafka.LatencyP50Ms <= 0 || kafka.LatencyP99Ms < kafka.LatencyP50Ms {
		t.Fatalf("kafka row %+v", kafka)
	}
	again, err := CompareChannels(ChannelCompareOptions{Seed: 11, Seeds: 3, Channels: []string{"kafka"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again[0].TraceHashes, ",") != strings.Join(kafka.TraceHashes, ",") {
		t.Fatalf("the kafka channel's runs differ between two comparisons: %v, %v", again[0].TraceHashes, kafka.TraceHashes)
	}
}

// TestCompareChannelsCountsUnackedLosses: a syslog source acknowledges
// nothing, so its rows have no acknowledged line to lose; what its agent
// crashes cost shows as unacknowledged lines lost, in the row and its
// JSON field.
func TestCompareChannelsCountsUnackedLosses(t *testing.T) {
	rows, err := CompareChannels(ChannelCompareOptions{Seed: 1, Seeds: 2, Channels: []string{"memory"},
		Params: map[string]string{"source": "syslogtcp"}})
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.Acked != 0 || r.Lost != 0 || r.UnackedLost == 0 {
		t.Fatalf("syslog over a memory channel: %+v", r)
	}
	data, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(data), fmt.Sprintf(`"unacked_lost":%d`, r.UnackedLost)) {
		t.Fatalf("%v: %s", err, data)
	}
}

// TestCompareChannelsRefusesBadOptions: each refusal names what is wrong.
func TestCompareChannelsRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		opts ChannelCompareOptions
		want string
	}{
		{ChannelCompareOptions{Seeds: 0, Channels: []string{"file"}}, "seeds 0"},
		{ChannelCompareOptions{Seeds: 1}, "no channels"},
		{ChannelCompareOptions{Seeds: 1, Channels: []string{"file", "file"}}, `"file" named twice`},
		{ChannelCompareOptions{Seeds: 1, Channels: []string{"jdbc"}}, "jdbc"},
		{ChannelCompareOptions{Seeds: 1, Channels: []string{"file"}, Params: map[string]string{"channel": "memory"}}, "param channel"},
		{ChannelCompareOptions{Seeds: 1, Channels: []string{"file"}, Params: map[string]string{"hop": "maybe"}}, "hop"},
	} {
		if _, err := CompareChannels(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.opts, err, c.want)
		}
	}
}
