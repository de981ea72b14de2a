package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// listed returns the names an agent-level list key gives, and its line.
func (p *parser) listed(key string) ([]string, int) {
	prop, ok := p.top[key]
	if !ok {
		return nil, 0
	}
	if p.lists == nil {
		p.lists = map[string][]string{}
	}
	names, ok := p.lists[key]
	if !ok {
		names = p.names(Property{Key: key, Value: prop.Value, Line: prop.Line})
		p.lists[key] = names
	}
	return names, prop.Line
}

func (p *parser) buildChannels() map[string]*Channel {
	names, line := p.listed("channels")
	if len(names) == 0 {
		p.fail(line, p.full("channels"), "missing required key: an agent needs at least one channel")
	}
	byName := map[string]*Channel{}
	for _, name := range names {
		c, ok := p.component(KindChannel, "channels", name, line)
		if !ok {
			continue
		}
		ch := &Channel{Component: c}
		capacityKey, capacity := "capacity", int64(0)
		if ch.Type == "SPILLABLEMEMORY" {
			// Its capacity is memory and overflow together.
			capacityKey, capacity = "memoryCapacity", ch.Int("memoryCapacity")+ch.Int("overflowCapacity")
		} else {
			capacity = ch.Int("capacity")
		}
		if ch.Int("transactionCapacity") > capacity {
			prop := ch.Params["transactionCapacity"]
			if prop.Line == 0 {
				prop = ch.Params[capacityKey]
			}
			p.fail(prop.Line, p.full("channels."+name+".transactionCapacity"),
				"transactionCapacity %d is larger than capacity %d", ch.Int("transactionCapacity"), capacity)
		}
		if ch.Type == "file" || ch.Type == "SPILLABLEMEMORY" {
			p.checkDataDirs(name, ch)
		}
		byName[name] = ch
		p.a.Channels = append(p.a.Channels, ch)
	}
	return byName
}

// DataDirsMax bounds the comma-separated directories of a file channel's
// dataDirs; each holds a log of its own.
const DataDirsMax = 64

// checkDataDirs refuses a dataDirs list with an empty entry, a directory
// named twice (two logs in one directory would take each other's files)
// or more than DataDirsMax entries.
func (p *parser) checkDataDirs(name string, ch *Channel) {
	prop := ch.Params["dataDirs"]
	key := p.full("channels." + name + ".dataDirs")
	dirs := strings.Split(ch.String("dataDirs"), ",")
	if len(dirs) > DataDirsMax {
		p.fail(prop.Line, key, "%d data directories, beyond %d", len(dirs), DataDirsMax)
		return
	}
	seen := map[string]bool{}
	for i, dir := range dirs {
		dir = strings.TrimSpace(dir)
		switch {
		case dir == "":
			p.fail(prop.Line, key, "data directory %d of %d is empty", i+1, len(dirs))
			return
		case seen[dir]:
			p.fail(prop.Line, key, "data directory %q is named twice", dir)
			return
		}
		seen[dir] = true
	}
}

func (p *parser) buildSources(channels map[string]*Channel) {
	names, line := p.listed("sources")
	for _, name := range names {
		c, ok := p.component(KindSource, "sources", name, line)
		if !ok {
			continue
		}
		src := &Source{Component: c}
		key := "sources." + name + ".channels"
		prop, ok := src.Params["channels"]
		if !ok || len(strings.Fields(prop.Value)) == 0 {
			p.fail(line, p.full(key), "missing required key: the channels the source writes to")
			continue
		}
		src.Channels = p.names(Property{Key: key, Value: prop.Value, Line: prop.Line})
		for _, ch := range src.Channels {
			if channels[ch] == nil {
				p.fail(prop.Line, p.full(key), "unknown channel %s (%s)", ch, p.knownChannels())
				continue
			}
			p.checkBatch(&src.Component, "sources", channels[ch])
		}
		p.buildSelector(src)
		p.buildInterceptors(src)
		p.a.Sources = append(p.a.Sources, src)
	}
}

func (p *parser) knownChannels() string {
	names, _ := p.listed("channels")
	if len(names) == 0 {
		return "the agent lists no channels"
	}
	return fmt.Sprintf("%s.channels lists %s", p.agent, strings.Join(names, " "))
}

// checkBatch refuses a batch larger than the channel's transactionCapacity:
// such a batch could never commit.
func (p *parser) checkBatch(c *Component, group string, ch *Channel) {
	key, prop, ok := c.batchProperty()
	if !ok {
		return
	}
	batch, capacity := c.BatchSize(), ch.Int("transactionCapacity")
	if batch > capacity {
		p.fail(prop.Line, p.full(group+"."+c.Name+"."+key),
			"batch of %d is larger than channel %s's transactionCapacity %d", batch, ch.Name, capacity)
	}
}

func (p *parser) buildSelector(src *Source) {
	prefix := "sources." + src.Name + ".selector."
	sel := Selector{Type: "replicating", Mapping: map[string][]string{}}
	if prop, ok := src.Params["selector.type"]; ok {
		sel.Type = prop.Value
		if !slices.Contains(selectorTypes, sel.Type) {
			p.fail(prop.Line, p.full(prefix+"type"), "unknown selector type %q (known: %s)", sel.Type, strings.Join(selectorTypes, ", "))
		}
	}
	inSource := func(prop Property, key string) []string {
		names := p.names(Property{Key: key, Value: prop.Value, Line: prop.Line})
		for _, n := range names {
			if !slices.Contains(src.Channels, n) {
				p.fail(prop.Line, p.full(key), "channel %s is not one of the source's channels (%s)", n, strings.Join(src.Channels, " "))
			}
		}
		return names
	}
	sel.Header = "flume.selector.header"
	for _, key := range sortedKeys(src.Params) {
		rest, ok := strings.CutPrefix(key, "selector.")
		if !ok {
			continue
		}
		prop := src.Params[key]
		switch {
		case rest == "optional":
			sel.Optional = inSource(prop, prefix+rest)
		case rest == "header":
			sel.Header = prop.Value
		case rest == "default":
			sel.Default = inSource(prop, prefix+rest)
		case strings.HasPrefix(rest, "mapping."):
			sel.Mapping[strings.TrimPrefix(rest, "mapping.")] = inSource(prop, prefix+rest)
		}
	}
	src.Selector = sel
}

func (p *parser) buildInterceptors(src *Source) {
	prop, ok := src.Params["interceptors"]
	if !ok {
		return
	}
	key := "sources." + src.Name + ".interceptors"
	for _, name := range p.names(Property{Key: key, Value: prop.Value, Line: prop.Line}) {
		ic := Interceptor{Name: name, Params: map[string]Property{}, Line: prop.Line}
		for k, v := range src.Params {
			if rest, ok := strings.CutPrefix(k, "interceptors."+name+"."); ok {
				ic.Params[rest] = v
			}
		}
		t, ok := ic.Params["type"]
		if !ok {
			p.fail(prop.Line, p.full(key+"."+name+".type"), "missing required key (the interceptor's type)")
			continue
		}
		ic.Type = t.Value
		src.Interceptors = append(src.Interceptors, ic)
	}
}

func (p *parser) buildSinks(channels map[string]*Channel) {
	names, line := p.listed("sinks")
	for _, name := range names {
		c, ok := p.component(KindSink, "sinks", name, line)
		if !ok {
			continue
		}
		sink := &Sink{Component: c}
		key := "sinks." + name + ".channel"
		prop, ok := sink.Params["channel"]
		if !ok || prop.Value == "" {
			p.fail(line, p.full(key), "missing required key: the channel the sink takes from")
			continue
		}
		if len(strings.Fields(prop.Value)) != 1 {
			p.fail(prop.Line, p.full(key), "a sink takes from exactly one channel, got %q", prop.Value)
			continue
		}
		sink.Channel = prop.Value
		ch := channels[sink.Channel]
		if ch == nil {
			p.fail(prop.Line, p.full(key), "unknown channel %s (%s)", sink.Channel, p.knownChannels())
			continue
		}
		p.checkBatch(&sink.Component, "sinks", ch)
		p.a.Sinks = append(p.a.Sinks, sink)
	}
}

func (p *parser) buildSinkGroups() {
	names, line := p.listed("sinkgroups")
	sinks, _ := p.listed("sinks")
	owner := map[string]string{}
	for _, name := range names {
		keys := p.parts["sinkgroups"][name]
		g := &SinkGroup{Name: name, Processor: "default", Params: map[string]Property{}, Line: line}
		prefix := "sinkgroups." + name + "."
		prop, ok := keys["sinks"]
		if !ok {
			p.fail(line, p.full(prefix+"sinks"), "missing required key: the sinks of the group")
			continue
		}
		g.Sinks = p.names(Property{Key: prefix + "sinks", Value: prop.Value, Line: prop.Line})
		for _, s := range g.Sinks {
			switch {
			case !slices.Contains(sinks, s):
				p.fail(prop.Line, p.full(prefix+"sinks"), "unknown sink %s", s)
			case owner[s] != "":
				p.fail(prop.Line, p.full(prefix+"sinks"), "sink %s is already in group %s", s, owner[s])
			default:
				owner[s] = name
			}
		}
		for k, v := range keys {
			if rest, ok := strings.CutPrefix(k, "processor."); ok {
				g.Params[rest] = v
			}
		}
		if t, ok := g.Params["type"]; ok {
			g.Processor = t.Value
			if !slices.Contains(processorTypes, g.Processor) {
				p.fail(t.Line, p.full(prefix+"processor.type"), "unknown sink processor %q (known: %s)", g.Processor, strings.Join(processorTypes, ", "))
			}
		}
		p.checkGroupKeys(g, prefix)
		if g.Processor == "default" && len(g.Sinks) > 1 {
			p.fail(prop.Line, p.full(prefix+"sinks"), "the default sink processor runs one sink; use failover or load_balance for %d", len(g.Sinks))
		}
		p.a.SinkGroups = append(p.a.SinkGroups, g)
	}
}

// warnUnlisted names the keys of components the agent does not list: Flume
// ignores them, and so does sluice, but a typo in a list is worth a line.
func (p *parser) warnUnlisted() {
	for _, group := range sortedKeys(p.parts) {
		listed, _ := p.listed(group)
		for _, name := range sortedKeys(p.parts[group]) {
			if slices.Contains(listed, name) {
				continue
			}
			first := 0
			for _, prop := range p.parts[group][name] {
				if first == 0 || prop.Line < first {
					first = prop.Line
				}
			}
			p.a.Warnings = append(p.a.Warnings, fmt.Sprintf("line %d: %s.%s.%s is configured but %s.%s does not list it; ignored",
				first, p.agent, group, name, p.agent, group))
		}
	}
}

func (p *parser) warnUnusedChannels() {
	used := map[string]bool{}
	for _, s := range p.a.Sources {
		for _, c := range s.Channels {
			used[c] = true
		}
	}
	for _, s := range p.a.Sinks {
		used[s.Channel] = true
	}
	for _, c := range p.a.Channels {
		if !used[c.Name] {
			p.a.Warnings = append(p.a.Warnings, fmt.Sprintf("channel %s is used by no source and no sink", c.Name))
		}
	}
}

// groupKeys are the sink processor keys with a checked value, below
// "processor.".
var groupKeys = map[string]keySpec{
	"maxpenalty":          intKey(30000, 0, unbounded),
	"backoff":             boolKey(false),
	"selector":            {kind: valueString, text: "round_robin", choices: []string{"round_robin", "random"}},
	"selector.maxTimeOut": intKey(30000, 0, unbounded),
}

func (p *parser) checkGroupKeys(g *SinkGroup, prefix string) {
	for _, key := range sortedKeys(g.Params) {
		prop := g.Params[key]
		ks, ok := groupKeys[key]
		if rest, isPriority := strings.CutPrefix(key, "priority."); isPriority {
			ks, ok = intKey(0, -1<<31, 1<<31-1), true
			if !slices.Contains(g.Sinks, rest) {
				p.fail(prop.Line, p.full(prefix+"processor."+key), "sink %s is not in the group", rest)
			}
		}
		if !ok {
			continue
		}
		if err := ks.check(prop.Value); err != nil {
			p.fail(prop.Line, p.full(prefix+"processor."+key), "%v", err)
		}
	}
}

// Int returns a processor key's value ("maxpenalty", "priority.k1"), or
// def when the file does not set it.
func (g *SinkGroup) Int(key string, def int64) int64 {
	prop, ok := g.Params[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(prop.Value, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("config: sink group %s: %s %q was not checked", g.Name, key, prop.Value))
	}
	return n
}

// String returns a processor key's value, or def.
func (g *SinkGroup) String(key, def string) string {
	if prop, ok := g.Params[key]; ok {
		return prop.Value
	}
	return def
}
