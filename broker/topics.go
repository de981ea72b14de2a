package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-sim/sluice/broker/storage"
	"github.com/sluice-sim/sluice/sim"
)

// topicsFile is the broker's record of its topics. Until a controller
// quorum holds metadata, a single broker keeps it here, replaced
// atomically (write, sync, rename, sync directory) on every change.
const topicsFile = "topics.json"

// topicsMax bounds the topics of one broker; partitionsMax the partitions
// of one topic.
const (
	topicsMax     = 10_000
	partitionsMax = 10_000
)

type topicRegistry struct {
	b *Broker
	// byName holds the topics; it is changed only through put and unset,
	// which forget the topic get last found.
	byName map[string]*topic
	// lastName and last are the topic get last found: a broker looks
	// its topic up for every partition of every request, and a cluster
	// mostly serves one.
	lastName string
	last     *topic
	// writing is set while topics.json is being replaced; changes made
	// meanwhile are written by the next replacement.
	writing bool
	dirty   bool
	waiters []func(error)
}

// topicRecord is a topic as topics.json keeps it.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type topic struct {
	topicRecord
	// durable is set once topics.json records the topic: until then no
	// client may see it, or an acknowledged write could vanish with a
	// topic a crash forgot.
	durable bool
	id      [16]byte
	// partitions are indexed by partition number; in a cluster, those
	// this broker holds no replica of are nil.
	partitions []*partition
	logConfig  storage.Config
	// minInsync is the topic's min.insync.replicas.
	minInsync int
}

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's rules for topic names.
func validateTopicName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters, more than 249", len(name))
	case !legalTopicName.MatchString(name):
		return fmt.Errorf("topic name %q has characters other than ASCII letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// loadTopics reads topics.json and opens every partition's log.
func loadTopics(b *Broker) (*topicRegistry, error) {
	reg := &topicRegistry{b: b, byName: make(map[string]*topic)}
	records, err := readTopicsFile(b.env.FS, path.Join(b.cfg.DataDir, topicsFile))
	if err != nil {
		return nil, err
	}
	for _, rec := range records {
		t, err := reg.build(rec)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", rec.Name, err)
		}
		if err := t.openPartitions(b); err != nil {
			return nil, err
		}
		t.durable = true
		reg.put(rec.Name, t)
	}
	if err := reg.removeStrays(); err != nil {
		return nil, err
	}
	return reg, nil
}

func readTopicsFile(fs sim.FS, name string) ([]topicRecord, error) {
	sealed, err := storage.ReadCheckpointFile(fs, name)
	if errors.Is(err, sim.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	data, err := storage.Unseal(name, sealed)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Topics []topicRecord `json:"topics"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	if len(doc.Topics) > topicsMax {
		return nil, fmt.Errorf("%s lists %d topics, more than %d", name, len(doc.Topics), topicsMax)
	}
	return doc.Topics, nil
}

// build turns a record into a topic with its log configuration.
func (reg *topicRegistry) build(rec topicRecord) (*topic, error) {
	if err := validateTopicName(rec.Name); err != nil {
		return nil, err
	}
	if rec.Partitions < 1 || rec.Partitions > partitionsMax {
		return nil, fmt.Errorf("%d partitions, want 1 to %d", rec.Partitions, partitionsMax)
	}
	cfg, err := topicLogConfig(reg.b.cfg.Log, rec.Configs)
	if err != nil {
		return nil, err
	}
	t := &topic{topicRecord: rec, logConfig: cfg, minInsync: topicMinInsync(rec.Configs, reg.b.cfg.MinInsyncReplicas)}
	id, err := parseTopicID(rec.ID)
	if err != nil {
		return nil, err
	}
	t.id = id
	return t, nil
}

// removeStrays deletes partition directories no topic owns: what a crash
// left between forgetting a topic and deleting its files.
func (reg *topicRegistry) removeStrays() error {
	fs, dir := reg.b.env.FS, reg.b.cfg.DataDir
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, name := range names {
		stray := strings.HasSuffix(name, deletedSuffix) // a deletion a crash interrupted
		if topicName, index, ok := splitPartitionDir(name); ok {
			t := reg.byName[topicName]
			stray = t == nil || index >= t.Partitions
		}
		if !stray {
			continue
		}
		reg.b.env.Log.Logf("removing stray partition directory %s", name)
		if err := fs.RemoveAll(path.Join(dir, name)); err != nil {
			return fmt.Errorf("remove stray %s: %w", name, err)
		}
	}
	return nil
}

// splitPartitionDir parses "<topic>-<partition>".
func splitPartitionDir(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 || validateTopicName(name[:i]) != nil {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

func partitionDir(dataDir, topicName string, index int32) string {
	return path.Join(dataDir, fmt.Sprintf("%s-%d", topicName, index))
}

// sortedNames lists the durable topics by name.
func (reg *topicRegistry) sortedNames() []string {
	names := make([]string, 0, len(reg.byName))
	for n, t := range reg.byName {
		if t.durable {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// create adds a topic, opens its partitions and makes the registry
// durable; done runs when it is.
func (reg *topicRegistry) create(rec topicRecord, done func(error)) error {
	if len(reg.byName) >= topicsMax {
		return fmt.Errorf("the broker holds %d topics already", topicsMax)
	}
	t, err := reg.build(rec)
	if err != nil {
		return err
	}
	// A new topic's partitions start at offset 0, whatever a predecessor
	// of the same name left in the checkpoint read at start.
	reg.forgetRecoveryPoints(rec.Name, rec.Partitions)
	if err := t.openPartitions(reg.b); err != nil {
		return err
	}
	reg.put(rec.Name, t)
	reg.persist(func(err error) {
		if err != nil {
			// Unrecorded, the topic would vanish at the next start;
			// forget it now and let the client try again.
			reg.unset(rec.Name)
			t.close()
		} else {
			t.durable = true
		}
		done(err)
	})
	return nil
}

// get returns a topic clients may use: one that exists and is durable.
func (reg *topicRegistry) get(name string) *topic {
	t := reg.last
	if t == nil || name != reg.lastName {
		t = reg.byName[name]
		reg.lastName, reg.last = name, t
	}
	if t != nil && t.durable {
		return t
	}
	return nil
}

// put adds or replaces the topic called name.
func (reg *topicRegistry) put(name string, t *topic) {
	reg.byName[name] = t
	reg.lastName, reg.last = "", nil
}

// unset forgets the topic called name.
func (reg *topicRegistry) unset(name string) {
	delete(reg.byName, name)
	reg.lastName, reg.last = "", nil
}

// deletedSuffix marks a partition directory moved aside for deletion,
// as Kafka renames it: "<topic>-<partition>.<topic id>-delete".
const deletedSuffix = "-delete"

// asideDir is where a partition directory goes while its topic is deleted.
func asideDir(dir, topicID string) string { return dir + "." + topicID + deletedSuffix }

// remove forgets a topic: its partition directories are first moved aside
// (so that a topic created at once under the same name starts empty), the
// registry is made durable, then the moved directories are deleted. A
// crash before they are gone leaves them for removeStrays.
func (reg *topicRegistry) remove(name string, done func(error)) {
	t := reg.byName[name]
	reg.unset(name)
	t.close()
	reg.forgetRecoveryPoints(name, t.Partitions)
	fs, dataDir := reg.b.env.FS, reg.b.cfg.DataDir
	var moved []string // partition directories, now under asideDir
	for i := range t.partitions {
		dir := partitionDir(dataDir, name, int32(i))
		if err := fs.Rename(dir, asideDir(dir, t.ID)); err != nil {
			reg.b.env.Log.Logf("move %s aside for deletion: %v", dir, err)
			continue
		}
		moved = append(moved, dir)
	}
	reg.persist(func(err error) {
		if err != nil {
			reg.restore(t, moved)
			done(err)
			return
		}
		for _, dir := range moved {
			if rmErr := fs.RemoveAll(asideDir(dir, t.ID)); rmErr != nil {
				reg.b.env.Log.Logf("delete %s: %v", dir, rmErr)
			}
		}
		done(nil)
	})
}

// forgetRecoveryPoints drops the recovery points read at start for a
// topic's partitions: they belong to the log that was there, and a new log
// opened with one would take it for data the disk lost.
func (reg *topicRegistry) forgetRecoveryPoints(name string, partitions int32) {
	for i := range partitions {
		delete(reg.b.recoveryPoints, path.Base(partitionDir("", name, i)))
	}
}

// restore undoes a deletion the registry could not record: the topic is
// still in topics.json, so its directories go back and it serves again.
func (reg *topicRegistry) restore(t *topic, moved []string) {
	if reg.byName[t.Name] != nil {
		// Created again meanwhile: the new topic owns the name, and the
		// moved directories are strays for the next start to remove.
		return
	}
	for _, dir := range moved {
		if err := reg.b.env.FS.Rename(asideDir(dir, t.ID), dir); err != nil {
			reg.b.env.Log.Logf("restore %s: %v", dir, err)
		}
	}
	if err := t.openPartitions(reg.b); err != nil {
		reg.b.env.Log.Logf("reopen topic %s after a failed deletion: %v", t.Name, err)
		return
	}
	reg.put(t.Name, t)
}

// persist replaces topics.json with the registry as it is now. Calls made
// while a replacement is running are folded into the next one.
func (reg *topicRegistry) persist(done func(error)) {
	reg.waiters = append(reg.waiters, done)
	if reg.writing {
		reg.dirty = true
		return
	}
	reg.writing, reg.dirty = true, false
	waiters := reg.waiters
	reg.waiters = nil
	// Every topic, durable or being created: a creation is durable once
	// this file holds it.
	records := make([]topicRecord, 0, len(reg.byName))
	for _, n := range reg.allNames() {
		records = append(records, reg.byName[n].topicRecord)
	}
	data, err := json.MarshalIndent(map[string]any{"topics": records}, "", "  ")
	sim.Assert(err == nil, "marshal topics: %v", err)
	storage.ReplaceFile(reg.b.env.FS, path.Join(reg.b.cfg.DataDir, topicsFile), storage.Seal(data), func(err error) {
		reg.writing = false
		for _, w := range waiters {
			w(err)
		}
		if reg.dirty {
			reg.persist(func(error) {})
		}
	})
}

func (reg *topicRegistry) closeAll() {
	for _, n := range reg.allNames() {
		reg.byName[n].close()
	}
}

// allNames lists every topic, durable or not, by name.
func (reg *topicRegistry) allNames() []string {
	names := make([]string, 0, len(reg.byName))
	for n := range reg.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newTopicID draws a topic id (a version-4 UUID) from the node's stream.
func newTopicID(b *Broker) string {
	var id [16]byte
	for i := range id {
		id[i] = byte(b.env.Rand.Uint32())
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

func parseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	hex := strings.ReplaceAll(s, "-", "")
	if len(hex) != 32 {
		return id, fmt.Errorf("topic id %q is not a UUID", s)
	}
	for i := range id {
		v, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		if err != nil {
			return id, fmt.Errorf("topic id %q is not a UUID", s)
		}
		id[i] = byte(v)
	}
	return id, nil
}

// topicConfigKeys are the topic configs the broker honours.
var topicConfigKeys = []string{
	"cleanup.policy", "delete.retention.ms", "flush.messages", "flush.ms",
	"index.interval.bytes", "max.message.bytes", "min.insync.replicas",
	"retention.bytes", "retention.ms", "segment.bytes", "segment.ms",
	"unclean.leader.election.enable",
}

func isTopicConfigKey(k string) bool { return slices.Contains(topicConfigKeys, k) }
