package broker_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// servedRanges is what each API file declares it serves; ApiVersions must
// advertise exactly these, no more (a client would send what we cannot
// read) and no fewer (a client would not use what we serve).
var servedRanges = map[int16][2]int16{
	0:  {3, 9},  // Produce
	1:  {4, 12}, // Fetch
	2:  {1, 6},  // ListOffsets
	3:  {0, 12}, // Metadata
	8:  {0, 8},  // OffsetCommit
	9:  {0, 8},  // OffsetFetch
	10: {0, 4},  // FindCoordinator
	11: {0, 9},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	15: {0, 5},  // DescribeGroups
	16: {0, 5},  // ListGroups
	18: {0, 3},  // ApiVersions
	19: {0, 7},  // CreateTopics
	20: {0, 5},  // DeleteTopics
	21: {0, 2},  // DeleteRecords
	22: {0, 4},  // InitProducerId
	23: {0, 4},  // OffsetForLeaderEpoch
	32: {0, 4},  // DescribeConfigs
	33: {0, 2},  // AlterConfigs
	37: {0, 3},  // CreatePartitions
	42: {0, 2},  // DeleteGroups
	44: {0, 1},  // IncrementalAlterConfigs
	47: {0, 0},  // OffsetDelete
	60: {0, 1},  // DescribeCluster
}

// checkAdvertised fails unless keys lists exactly servedRanges, sorted by
// key, each once.
func checkAdvertised(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	if len(keys) != len(servedRanges) {
		t.Fatalf("advertised %d keys, want %d: %+v", len(keys), len(servedRanges), keys)
	}
	for i, k := range keys {
		if i > 0 && keys[i-1].ApiKey >= k.ApiKey {
			t.Fatalf("keys not sorted or repeated at %d: %+v", i, keys)
		}
		want, ok := servedRanges[k.ApiKey]
		if !ok {
			t.Fatalf("advertised key %d (%s), which is not served", k.ApiKey, kmsg.NameForKey(k.ApiKey))
		}
		if k.MinVersion != want[0] || k.MaxVersion != want[1] {
			t.Fatalf("%s advertised v%d-v%d, want v%d-v%d", kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, want[0], want[1])
		}
	}
}

func TestApiVersionsListsServedRanges(t *testing.T) {
	r := newRig(t, 1, nil)
	for v := int16(0); v <= apiVersionsVersion; v++ {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			defer r.bind(t)()
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(v)
			req.ClientSoftwareName, req.ClientSoftwareVersion = "broker-test", "1"
			resp := r.roundTrip(req).(*kmsg.ApiVersionsResponse)
			expectCode(t, "api versions", resp.ErrorCode, nil)
			checkAdvertised(t, resp.ApiKeys)
		})
	}
}

// A client asking a newer ApiVersions than served gets a v0 answer with
// UNSUPPORTED_VERSION that still carries the ranges, and the connection
// stays open so that the client can ask again at a version we serve.
func TestApiVersionsAboveMaxAnswersV0WithRanges(t *testing.T) {
	r := newRig(t, 2, nil)
	tc := r.dial()
	for _, v := range []int16{apiVersionsVersion + 1, kmsg.NewPtrApiVersionsRequest().MaxVersion()} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "broker-test", "1"
		resp := r.wait(tc.sendParsedAt(req, 0)).(*kmsg.ApiVersionsResponse)
		expectCode(t, fmt.Sprintf("api versions v%d", v), resp.ErrorCode, kerr.UnsupportedVersion)
		checkAdvertised(t, resp.ApiKeys)
	}
	if tc.closed {
		t.Fatalf("connection closed after an ApiVersions above the served max: %v", tc.closeErr)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(apiVersionsVersion)
	resp := r.wait(tc.send(req)).(*kmsg.ApiVersionsResponse)
	expectCode(t, "api versions retried lower", resp.ErrorCode, nil)
	checkAdvertised(t, resp.ApiKeys)
	if len(tc.strays) != 0 {
		t.Fatalf("%d frames answered nothing", len(tc.strays))
	}
}
