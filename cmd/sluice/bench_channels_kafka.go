package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The kafka channel's rows need a broker: a real `sluice broker` process
// with group commit (an fsync before every acknowledgement, so the channel
// is as durable as the file channel) on a loopback port and a directory
// of the run, started once for the whole comparison. Each row uses a
// topic and a consumer group of its own.

const (
	benchBrokerReadyMax = 20 * time.Second
	benchBrokerStopMax  = 30 * time.Second
	// benchKafkaSessionTimeout is the kafka channel's session.timeout.ms:
	// the broker's least, so that an agent restarted after kill -9 waits
	// as little as it can for its dead member's partitions.
	benchKafkaSessionTimeout = 6 * time.Second
)

// channelBenchBroker is the sluice broker process of a comparison.
type channelBenchBroker struct {
	addr    string
	cmd     *exec.Cmd
	logName string
	exited  chan struct{}
	waitErr error
}

// startChannelBenchBroker starts exe's broker on a free loopback port with its
// data under dir, and waits until it accepts connections.
func startChannelBenchBroker(ctx context.Context, exe, dir string) (*channelBenchBroker, error) {
	addrs, err := freeLoopbackPorts(1)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	logName := filepath.Join(dir, "broker.log")
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	b := &channelBenchBroker{addr: addrs[0], logName: logName, exited: make(chan struct{}),
		cmd: exec.Command(exe, "broker", "--data", filepath.Join(dir, "data"), "--listen", addrs[0], "--flush", "group")}
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	go func() { b.waitErr = b.cmd.Wait(); close(b.exited) }()
	deadline := time.Now().Add(benchBrokerReadyMax)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return b, nil
		}
		select {
		case <-ctx.Done():
			b.kill()
			return nil, ctx.Err()
		case <-b.exited:
			return nil, fmt.Errorf("broker exited (%v) before listening on %s:\n%s", b.waitErr, b.addr, logTail(logName))
		case <-time.After(20 * time.Millisecond):
		}
	}
	b.kill()
	return nil, fmt.Errorf("broker did not listen on %s within %v:\n%s", b.addr, benchBrokerReadyMax, logTail(logName))
}

func (b *channelBenchBroker) kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
}

// stop ends the broker with SIGTERM, or SIGKILL after benchBrokerStopMax.
func (b *channelBenchBroker) stop() {
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(benchBrokerStopMax):
		b.kill()
	}
}

// benchKafkaTopic names a row's channel topic (and its group).
func benchKafkaTopic(run string, size int) string {
	return fmt.Sprintf("bench-channel-%s-%d-%d", run, size, time.Now().UnixNano())
}

// waitKafkaGroupCaughtUp polls until group has committed the end offset
// of every partition of topic that holds records: a kafka channel's
// ChannelSize counts only what it read ahead, so it reads 0 before a
// restarted agent's member even joined. A take commits its offsets before
// it succeeds, and the sink commits its takes after writing, so a caught-up
// group means every event reached the sink.
func waitKafkaGroupCaughtUp(ctx context.Context, addr, topic, group string, limit time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("kafka client for %s: %w", addr, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(limit)
	last := "no answer"
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lag, err := kafkaGroupLag(ctx, adm, topic, group)
		if err == nil && lag == 0 {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("lag %d", lag)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("group %s did not read topic %s to its end within %v (%s)", group, topic, limit, last)
}

// kafkaGroupLag is the records of topic past group's committed offsets.
func kafkaGroupLag(ctx context.Context, adm *kadm.Client, topic, group string) (int64, error) {
	reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(reqCtx, topic)
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	commits, err := adm.FetchOffsets(reqCtx, group)
	if err != nil {
		return 0, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	lag := int64(0)
	var endErr error
	ends.Each(func(end kadm.ListedOffset) {
		if end.Err != nil {
			endErr = fmt.Errorf("end offset of %s/%d: %w", topic, end.Partition, end.Err)
			return
		}
		committed := int64(0)
		if c, ok := commits.Lookup(topic, end.Partition); ok && c.Err == nil {
			committed = c.At
		}
		lag += max(end.Offset-committed, 0)
	})
	return lag, endErr
}
