package broker_test

import (
	"testing"
	"time"

	"github.com/sluice-sim/sluice/broker"
)

// TestClusterUncleanElectionBrokerDefault: a broker's
// unclean.leader.election.enable is the default of the topics it creates;
// a topic's own config wins over it.
func TestClusterUncleanElectionBrokerDefault(t *testing.T) {
	c := newClusterRig(t, 5, nil, func(cfg *broker.Config) { cfg.Cluster.UncleanLeaderElection = true })
	inherits := newTopicSpec("inherits", 1)
	refuses := newTopicSpec("refuses", 1, "unclean.leader.election.enable", "false")
	for _, st := range c.createTopics(false, inherits, refuses) {
		expectCode(t, "create "+st.Topic, st.ErrorCode, nil)
	}
	c.runUntil("both topics in the image", 10*time.Second, func() bool {
		return c.image().Topics["inherits"] != nil && c.image().Topics["refuses"] != nil
	})
	if im := c.image(); !im.Topics["inherits"].Unclean || im.Topics["refuses"].Unclean {
		t.Fatalf("unclean election: inherits %v (want true, the broker's), refuses %v (want false, its own)",
			im.Topics["inherits"].Unclean, im.Topics["refuses"].Unclean)
	}
}
