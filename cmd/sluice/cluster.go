package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A local cluster is real `sluice broker --config` processes on loopback
// ports, one directory each under --data, started and watched by `sluice
// cluster up`. Each node's server.properties is an ordinary file: a node
// killed by hand is started again with `sluice broker --config` on it.

// clusterFileName is the description `cluster up` writes and `cluster
// down` reads.
const clusterFileName = "cluster.json"

// clusterFile is DIR/cluster.json.
type clusterFile struct {
	Bootstrap     string        `json:"bootstrap"`
	SupervisorPID int           `json:"supervisor_pid"`
	Nodes         []clusterNode `json:"nodes"`
}

// clusterNode is one process of the cluster.
type clusterNode struct {
	ID   int32  `json:"id"`
	Role string `json:"role"`
	// Address is the broker's listener; empty for a controller alone.
	Address string `json:"address,omitempty"`
	// ControllerAddress is the controller's listener; empty for a broker
	// alone.
	ControllerAddress string `json:"controller_address,omitempty"`
	PID               int    `json:"pid"`
	Config            string `json:"config"`
	Log               string `json:"log"`
}

func (n clusterNode) broker() bool     { return strings.Contains(n.Role, "broker") }
func (n clusterNode) controller() bool { return strings.Contains(n.Role, "controller") }

// Limits of a local cluster.
const (
	clusterNodesMax     = 32
	clusterReadyTimeout = 30 * time.Second
	// clusterStopTimeout bounds each node's clean stop (a broker's own
	// bound is 30 s) before it is killed.
	clusterStopTimeout = 40 * time.Second
)

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster of broker and controller processes",
		Example: `  sluice cluster up --brokers 3 --data ./cluster
  sluice cluster down --data ./cluster`,
	}
	cmd.AddCommand(newClusterUpCommand(), newClusterDownCommand())
	requireSubcommand(cmd)
	return cmd
}

// clusterPlan is what `cluster up` was asked for.
type clusterPlan struct {
	dir               string
	brokers           int
	controllers       int
	replicationFactor int
	minInsync         int
	flush             string
	restart           string
}

func newClusterUpCommand() *cobra.Command {
	plan := clusterPlan{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster on loopback ports and supervise it",
		Long: `Start a cluster of real sluice processes on free loopback ports: by default
each of --brokers nodes is a broker and a controller side by side (Kafka's
combined mode, process.roles=broker,controller), so three nodes make a
three-voter controller quorum; --controllers N runs N controllers as
processes of their own instead.

Each node gets DIR/node-ID/ with its server.properties, its log directory
and its output (server.log). Once every broker is listed in Metadata, it
prints the bootstrap address and writes DIR/cluster.json: each node's id,
role, addresses and pid.

It then watches the nodes and reports a node that exits. By default it
restarts none (a node killed on purpose can be started again with
'sluice broker --config DIR/node-ID/server.properties'); with --restart
on-failure it starts a node that exits again on the same directory, after a
pause that doubles from 1 s to 30 s while the node keeps dying within a
minute of its start, and rewrites cluster.json with the new pid. On SIGINT or
SIGTERM it stops every node cleanly (each within 40 s, else killed) and
removes cluster.json; 'sluice cluster down --data DIR' does that for a
cluster running in the background.`,
		Example: `  sluice cluster up --brokers 3 --data ./cluster
  kcat -L -b "$(jq -r .bootstrap ./cluster/cluster.json)"
  sluice cluster up --brokers 3 --controllers 3 --data ./cluster --min-insync-replicas 2 &
  sluice cluster up --brokers 3 --data ./cluster --restart on-failure
  sluice cluster down --data ./cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := plan.check(); err != nil {
				return usageError("%v", err)
			}
			return runClusterUp(cmd, plan)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&plan.dir, "data", "", "directory of the cluster's nodes and cluster.json (required)")
	fl.IntVar(&plan.brokers, "brokers", 3, "broker processes")
	fl.IntVar(&plan.controllers, "controllers", 0, "controller processes of their own; 0 runs a controller inside each broker (combined mode)")
	fl.IntVar(&plan.replicationFactor, "replication-factor", 0, "default.replication.factor (default: 3, or the broker count if fewer)")
	fl.IntVar(&plan.minInsync, "min-insync-replicas", 1, "min.insync.replicas of the brokers")
	fl.StringVar(&plan.flush, "flush", "group", "every broker's fsync policy: group, none, messages:N, interval:DURATION")
	fl.StringVar(&plan.restart, "restart", restartNo, "what to do when a node exits: no (report it) or on-failure (start it again)")
	cmd.MarkFlagRequired("data")
	return cmd
}

func (p *clusterPlan) check() error {
	switch {
	case p.brokers < 1 || p.brokers > clusterNodesMax:
		return fmt.Errorf("--brokers %d: want 1 to %d", p.brokers, clusterNodesMax)
	case p.controllers < 0 || p.controllers > clusterNodesMax:
		return fmt.Errorf("--controllers %d: want 0 (combined) to %d", p.controllers, clusterNodesMax)
	case p.minInsync < 1:
		return fmt.Errorf("--min-insync-replicas %d: want at least 1", p.minInsync)
	}
	if p.restart == "" {
		p.restart = restartNo
	}
	if p.restart != restartNo && p.restart != restartOnFailure {
		return fmt.Errorf("--restart %q: want %s or %s", p.restart, restartNo, restartOnFailure)
	}
	if p.replicationFactor == 0 {
		p.replicationFactor = min(3, p.brokers)
	}
	if p.replicationFactor < 1 || p.replicationFactor > p.brokers {
		return fmt.Errorf("--replication-factor %d: want 1 to the broker count %d", p.replicationFactor, p.brokers)
	}
	if _, err := parseFlushFlag(p.flush); err != nil {
		return fmt.Errorf("--flush: %v", err)
	}
	return nil
}

// nodes lays the cluster out: brokers 1..B (each a controller too in
// combined mode), then controllers B+1..B+C.
func (p clusterPlan) nodes() ([]clusterNode, error) {
	var nodes []clusterNode
	for i := 1; i <= p.brokers; i++ {
		role := "broker"
		if p.controllers == 0 {
			role = "broker,controller"
		}
		nodes = append(nodes, clusterNode{ID: int32(i), Role: role})
	}
	for i := 1; i <= p.controllers; i++ {
		nodes = append(nodes, clusterNode{ID: int32(p.brokers + i), Role: "controller"})
	}
	ports, err := freeLoopbackPorts(2 * len(nodes))
	if err != nil {
		return nil, err
	}
	for i := range nodes {
		n := &nodes[i]
		if n.broker() {
			n.Address = ports[2*i]
		}
		if n.controller() {
			n.ControllerAddress = ports[2*i+1]
		}
		dir := filepath.Join(p.dir, fmt.Sprintf("node-%d", n.ID))
		n.Config, n.Log = filepath.Join(dir, "server.properties"), filepath.Join(dir, "server.log")
	}
	return nodes, nil
}

// Ports are taken below the kernel's ephemeral range (32768 and up on
// Linux): a port found free there can be taken, before the node binds
// it, as the source port of another node's outgoing connection.
const (
	clusterPortLow  = 20000
	clusterPortHigh = 32000
)

// freeLoopbackPorts finds count free loopback ports, starting at a place
// drawn from the pid so that clusters started side by side rarely probe
// the same ports; it holds them all at once so that they differ.
func freeLoopbackPorts(count int) ([]string, error) {
	var addrs []string
	span := clusterPortHigh - clusterPortLow
	start := os.Getpid() * 7919 % span
	for i := 0; i < span && len(addrs) < count; i++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(clusterPortLow+(start+i)%span))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		defer l.Close()
		addrs = append(addrs, addr)
	}
	if len(addrs) < count {
		return nil, fmt.Errorf("found %d free loopback ports in [%d, %d), want %d", len(addrs), clusterPortLow, clusterPortHigh, count)
	}
	return addrs, nil
}

// serverProperties is a node's server.properties.
func (p clusterPlan) serverProperties(n clusterNode, nodes []clusterNode) string {
	var voters []string
	for _, v := range nodes {
		if v.controller() {
			voters = append(voters, fmt.Sprintf("%d@%s", v.ID, v.ControllerAddress))
		}
	}
	var listeners []string
	if n.broker() {
		listeners = append(listeners, "PLAINTEXT://"+n.Address)
	}
	if n.controller() {
		listeners = append(listeners, "CONTROLLER://"+n.ControllerAddress)
	}
	dir := filepath.Dir(n.Config)
	lines := []string{
		"# Written by sluice cluster up.",
		fmt.Sprintf("node.id=%d", n.ID),
		"process.roles=" + n.Role,
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"listeners=" + strings.Join(listeners, ","),
		"controller.listener.names=CONTROLLER",
		"log.dirs=" + filepath.Join(dir, "data"),
		"metadata.log.dir=" + filepath.Join(dir, "metadata"),
	}
	if n.broker() {
		lines = append(lines, "advertised.listeners=PLAINTEXT://"+n.Address,
			fmt.Sprintf("default.replication.factor=%d", p.replicationFactor),
			fmt.Sprintf("min.insync.replicas=%d", p.minInsync))
		lines = append(lines, flushProperties(p.flush)...)
	}
	return strings.Join(lines, "\n") + "\n"
}

// flushProperties spells a --flush policy in Kafka's keys; group commit
// is a broker's default.
func flushProperties(flush string) []string {
	policy, arg, _ := strings.Cut(flush, ":")
	switch policy {
	case "none":
		return []string{"log.flush.interval.messages=9223372036854775807"}
	case "messages":
		return []string{"log.flush.interval.messages=" + arg}
	case "interval":
		d, _ := time.ParseDuration(arg) // checked by parseFlushFlag
		return []string{fmt.Sprintf("log.flush.interval.ms=%d", max(1, d.Milliseconds()))}
	}
	return nil
}

// runningNode is a started node and its end.
type runningNode struct {
	clusterNode
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error
	startedAt time.Time
}

func runClusterUp(cmd *cobra.Command, plan clusterPlan) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	failed := func(err error) error {
		fmt.Fprintln(stderr, "sluice:", err)
		return &exitError{code: exitServeFailed, err: err}
	}
	if running, err := liveCluster(plan.dir); err != nil || running {
		if err == nil {
			err = fmt.Errorf("a cluster already runs from %s (supervisor pid in %s); stop it with 'sluice cluster down --data %s'",
				plan.dir, clusterFileName, plan.dir)
		}
		return failed(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return failed(fmt.Errorf("find the sluice executable: %w", err))
	}
	layout, err := plan.nodes()
	if err != nil {
		return failed(err)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	var nodes []*runningNode
	for _, n := range layout {
		rn, err := startClusterNode(exe, n, plan.serverProperties(n, layout))
		if err != nil {
			stopClusterNodes(nodes, stderr)
			return failed(err)
		}
		nodes = append(nodes, rn)
	}
	file := clusterFile{SupervisorPID: os.Getpid(), Bootstrap: bootstrapOf(layout)}
	for _, rn := range nodes {
		file.Nodes = append(file.Nodes, rn.clusterNode)
	}
	if err := waitClusterReady(nodes, plan.brokers, signals); err != nil {
		stopClusterNodes(nodes, stderr)
		return failed(err)
	}
	if err := writeClusterFile(plan.dir, file); err != nil {
		stopClusterNodes(nodes, stderr)
		return failed(err)
	}
	defer os.Remove(filepath.Join(plan.dir, clusterFileName))
	fmt.Fprintf(stdout, "bootstrap: %s\n", file.Bootstrap)
	for _, n := range file.Nodes {
		fmt.Fprintf(stdout, "node %d %-17s pid %-7d %s\n", n.ID, n.Role, n.PID, strings.Trim(n.Address+" "+n.ControllerAddress, " "))
	}
	fmt.Fprintf(stdout, "cluster.json: %s\n", filepath.Join(plan.dir, clusterFileName))
	sup := &supervisor{exe: exe, plan: plan, layout: layout, nodes: nodes, file: file, stderr: stderr}
	sup.run(signals)
	stopClusterNodes(sup.nodes, stderr)
	return nil
}

func bootstrapOf(nodes []clusterNode) string {
	var addrs []string
	for _, n := range nodes {
		if n.broker() {
			addrs = append(addrs, n.Address)
		}
	}
	return strings.Join(addrs, ",")
}

// startClusterNode writes a node's server.properties and starts it, its
// output appended to its log. The node gets a process group of its own:
// a Ctrl-C at the terminal reaches the supervisor, which stops the nodes
// in order, not every process at once.
func startClusterNode(exe string, n clusterNode, properties string) (*runningNode, error) {
	if err := os.MkdirAll(filepath.Dir(n.Config), 0o755); err != nil {
		return nil, fmt.Errorf("node %d: %w", n.ID, err)
	}
	if err := os.WriteFile(n.Config, []byte(properties), 0o644); err != nil {
		return nil, fmt.Errorf("node %d: write %s: %w", n.ID, n.Config, err)
	}
	out, err := os.OpenFile(n.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node %d: open %s: %w", n.ID, n.Log, err)
	}
	defer out.Close() // the child holds its own descriptor
	c := exec.Command(exe, "broker", "--config", n.Config)
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("node %d: start: %w", n.ID, err)
	}
	n.PID = c.Process.Pid
	rn := &runningNode{clusterNode: n, cmd: c, exited: make(chan struct{}), startedAt: time.Now()}
	go func() { rn.err = c.Wait(); close(rn.exited) }()
	return rn, nil
}

// waitClusterReady waits until a Metadata answer lists every broker; a
// node that exits first, or a signal, ends the wait.
func waitClusterReady(nodes []*runningNode, brokers int, signals <-chan os.Signal) error {
	var seeds []string
	for _, rn := range nodes {
		if rn.broker() {
			seeds = append(seeds, rn.Address)
		}
	}
	deadline := time.Now().Add(clusterReadyTimeout)
	last := "no answer"
	for {
		for _, rn := range nodes {
			select {
			case <-rn.exited:
				return fmt.Errorf("node %d exited while starting (%v); its output is in %s:\n%s", rn.ID, rn.err, rn.Log, logTail(rn.Log))
			default:
			}
		}
		select {
		case s := <-signals:
			return fmt.Errorf("stopped by %v while starting", s)
		default:
		}
		listed, err := metadataBrokers(seeds)
		if err == nil && listed == brokers {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("Metadata lists %d of %d brokers", listed, brokers)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster was not ready in %v: %s", clusterReadyTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metadataBrokers asks the brokers for Metadata and counts the brokers
// listed.
func metadataBrokers(seeds []string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(0))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return len(resp.Brokers), nil
}

// logTailBytesMax bounds the part of a process's log an error quotes.
const logTailBytesMax = 4 << 10

// logTail is the end of a process's log file, for an error that quotes
// it; empty when the file cannot be read.
func logTail(name string) string {
	f, err := os.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > logTailBytesMax {
		f.Seek(-logTailBytesMax, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, logTailBytesMax))
	return string(b)
}

func writeClusterFile(dir string, file clusterFile) error {
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, clusterFileName)
	if err := os.WriteFile(name+".tmp", append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return os.Rename(name+".tmp", name)
}

func readClusterFile(dir string) (clusterFile, error) {
	var file clusterFile
	data, err := os.ReadFile(filepath.Join(dir, clusterFileName))
	if err != nil {
		return file, err
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return file, fmt.Errorf("%s: %w", filepath.Join(dir, clusterFileName), err)
	}
	return file, nil
}

// Restart policies of `cluster up`, as systemd's Restart= names them.
const (
	restartNo        = "no"
	restartOnFailure = "on-failure"
)

// Restart pacing: a node that dies again within restartStableAfter of its
// start waits twice as long before the next start, up to restartPauseMax;
// restartsMax bounds one node's restarts over the supervisor's life, so a
// node that cannot start does not churn forever.
const (
	restartPauseMin    = time.Second
	restartPauseMax    = 30 * time.Second
	restartStableAfter = time.Minute
	restartsMax        = 100
)

// supervisor watches a running cluster's nodes, restarting those that exit
// when its plan says so.
type supervisor struct {
	exe    string
	plan   clusterPlan
	layout []clusterNode
	nodes  []*runningNode
	file   clusterFile
	stderr io.Writer
	// down are the nodes that exited and wait to start again, with when
	// each may; lastPause is each node's last pause before a start.
	down      map[int32]time.Time
	lastPause map[int32]time.Duration
	restarts  map[int32]int
}

// run reports each node that exits and restarts it if the plan says so,
// until a signal comes or every node has exited for good.
func (s *supervisor) run(signals <-chan os.Signal) {
	s.down, s.lastPause, s.restarts = map[int32]time.Time{}, map[int32]time.Duration{}, map[int32]int{}
	gone := map[int32]bool{}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for len(gone) < len(s.nodes) {
		select {
		case sig := <-signals:
			fmt.Fprintf(s.stderr, "sluice: %v: stopping the cluster\n", sig)
			return
		case <-ticker.C:
		}
		for i, rn := range s.nodes {
			if gone[rn.ID] {
				continue
			}
			if due, waiting := s.down[rn.ID]; waiting {
				if time.Now().After(due) {
					s.restart(i)
				}
				continue
			}
			select {
			case <-rn.exited:
				if !s.exited(rn) {
					gone[rn.ID] = true
				}
			default:
			}
		}
	}
	fmt.Fprintln(s.stderr, "sluice: every node has exited")
}

// exited reports a node's exit and, if it is to be restarted, when; false
// when it stays down. As systemd's on-failure, a node that exits with
// status 0 (stopped cleanly, by a SIGTERM of its own say) stays down.
func (s *supervisor) exited(rn *runningNode) bool {
	if s.plan.restart != restartOnFailure || rn.err == nil || s.restarts[rn.ID] >= restartsMax {
		fmt.Fprintf(s.stderr, "sluice: node %d (pid %d) exited: %v; not restarted (start it again with 'sluice broker --config %s')\n",
			rn.ID, rn.PID, exitDescription(rn.err), rn.Config)
		return false
	}
	pause := restartPauseMin
	if prev, ok := s.lastPause[rn.ID]; ok && time.Since(rn.startedAt) < restartStableAfter {
		pause = min(2*prev, restartPauseMax)
	}
	s.lastPause[rn.ID], s.down[rn.ID] = pause, time.Now().Add(pause)
	fmt.Fprintf(s.stderr, "sluice: node %d (pid %d) exited: %v; restarting it in %v\n", rn.ID, rn.PID, exitDescription(rn.err), pause)
	return true
}

// restart starts node i again on its directory and rewrites cluster.json
// with its new pid; a failed start is retried after a longer pause.
func (s *supervisor) restart(i int) {
	old := s.nodes[i]
	s.restarts[old.ID]++
	rn, err := startClusterNode(s.exe, s.layout[i], s.plan.serverProperties(s.layout[i], s.layout))
	if err != nil {
		next := min(2*s.lastPause[old.ID], restartPauseMax)
		s.lastPause[old.ID], s.down[old.ID] = next, time.Now().Add(next)
		fmt.Fprintf(s.stderr, "sluice: restart node %d: %v; trying again in %v\n", old.ID, err, next)
		return
	}
	delete(s.down, old.ID)
	s.nodes[i] = rn
	s.file.Nodes[i].PID = rn.PID
	if err := writeClusterFile(s.plan.dir, s.file); err != nil {
		fmt.Fprintf(s.stderr, "sluice: %v\n", err)
	}
	fmt.Fprintf(s.stderr, "sluice: node %d restarted (pid %d, restart %d)\n", rn.ID, rn.PID, s.restarts[old.ID])
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopClusterNodes stops the nodes: brokers first (their controlled
// shutdown needs the quorum), then controllers, each sent SIGTERM and
// killed if it has not exited within clusterStopTimeout.
func stopClusterNodes(nodes []*runningNode, stderr io.Writer) {
	var brokers, controllers []*runningNode
	for _, rn := range nodes {
		if rn.broker() {
			brokers = append(brokers, rn)
		} else {
			controllers = append(controllers, rn)
		}
	}
	for _, group := range [][]*runningNode{brokers, controllers} {
		for _, rn := range group {
			rn.cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.After(clusterStopTimeout)
		for _, rn := range group {
			select {
			case <-rn.exited:
			case <-deadline:
				fmt.Fprintf(stderr, "sluice: node %d (pid %d) did not stop in %v: killing it\n", rn.ID, rn.PID, clusterStopTimeout)
				rn.cmd.Process.Kill()
				<-rn.exited
			}
		}
	}
}

func newClusterDownCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a local cluster started with 'sluice cluster up'",
		Long: `Stop the cluster whose cluster.json is in --data: its supervisor, when it still
runs, stops every node cleanly; otherwise each node still running is sent
SIGTERM (killed after 40 s). A pid is signalled only while its command line
is still sluice's, so a pid reused since is left alone.`,
		Example: `  sluice cluster up --brokers 3 --data ./cluster &
  sluice cluster down --data ./cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClusterDown(cmd, dir)
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "the directory given to 'cluster up' (required)")
	cmd.MarkFlagRequired("data")
	return cmd
}

func runClusterDown(cmd *cobra.Command, dir string) error {
	file, err := readClusterFile(dir)
	if errors.Is(err, os.ErrNotExist) {
		return usageError("no %s in %s: no cluster runs from there", clusterFileName, dir)
	}
	if err != nil {
		return usageError("%v", err)
	}
	var pids []int
	if processIs(file.SupervisorPID, "cluster") {
		pids = append(pids, file.SupervisorPID)
	} else {
		for _, n := range file.Nodes {
			if processIs(n.PID, n.Config) {
				pids = append(pids, n.PID)
			}
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(clusterStopTimeout + 5*time.Second)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, n := range file.Nodes {
		if processIs(n.PID, n.Config) {
			fmt.Fprintf(cmd.ErrOrStderr(), "sluice: node %d (pid %d) still runs: killing it\n", n.ID, n.PID)
			syscall.Kill(n.PID, syscall.SIGKILL)
		}
	}
	os.Remove(filepath.Join(dir, clusterFileName))
	fmt.Fprintf(cmd.OutOrStdout(), "stopped the cluster of %d nodes in %s\n", len(file.Nodes), dir)
	return nil
}

// liveCluster reports whether dir's cluster.json names a supervisor that
// still runs.
func liveCluster(dir string) (bool, error) {
	file, err := readClusterFile(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return processIs(file.SupervisorPID, "cluster"), nil
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust the signal
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// processIs reports whether pid runs a sluice command line containing
// word, so that a pid reused by another program is never signalled.
func processIs(pid int, word string) bool {
	if !processAlive(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return true // no /proc: trust the pid
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 0 && strings.Contains(filepath.Base(args[0]), "sluice") && strings.Contains(string(cmdline), word)
}
