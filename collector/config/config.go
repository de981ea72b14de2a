package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Agent is one agent's configuration, checked: every component has a known
// type, every key a type reads parses, every channel a source or sink names
// exists, and no batch is larger than its channel's transactionCapacity.
type Agent struct {
	Name       string
	Sources    []*Source
	Channels   []*Channel
	Sinks      []*Sink
	SinkGroups []*SinkGroup
	// Warnings name what Flume would ignore with a warning: keys of
	// components that are not listed, channels nothing uses.
	Warnings []string
}

// Component is what every source, channel and sink has.
type Component struct {
	Kind Kind
	Name string
	// Type is the short type name ("memory"), whatever class name the file
	// gave.
	Type string
	// Params holds the component's keys relative to it ("port",
	// "selector.type"), with their lines.
	Params map[string]Property
	// Line is where the component is listed ("a1.sources = r1").
	Line int
	spec *typeSpec
}

// Source is a configured source.
type Source struct {
	Component
	Channels     []string
	Selector     Selector
	Interceptors []Interceptor
}

// Selector is a source's channel selector.
type Selector struct {
	// Type is "replicating" (the default) or "multiplexing".
	Type string
	// Optional are the channels a replicating selector may fail to write.
	Optional []string
	// Header, Mapping and Default configure a multiplexing selector.
	Header  string
	Mapping map[string][]string
	Default []string
}

// Interceptor is one of a source's interceptors, in the order listed.
type Interceptor struct {
	Name   string
	Type   string
	Params map[string]Property
	Line   int
}

// Channel is a configured channel.
type Channel struct{ Component }

// Sink is a configured sink.
type Sink struct {
	Component
	Channel string
}

// SinkGroup is a configured sink group (a1.sinkgroups.g1.*).
type SinkGroup struct {
	Name  string
	Sinks []string
	// Processor is "default", "failover" or "load_balance".
	Processor string
	// Params holds the group's keys below "processor." ("priority.k1").
	Params map[string]Property
	Line   int
}

// LookupEnv reads an environment variable for "${env:NAME}" values; the
// command passes os.LookupEnv, tests a map.
type LookupEnv func(name string) (string, bool)

// Parse reads a properties file and returns the named agent's checked
// configuration. Its error, when not nil, is an Errors listing every
// problem found, each with its line and key.
func Parse(text, agent string, env LookupEnv) (*Agent, error) {
	props, err := ReadProperties(text)
	if err != nil {
		return nil, err
	}
	p := &parser{agent: agent, env: env, a: &Agent{Name: agent}}
	p.collect(props)
	if len(p.errs) == 0 {
		p.build()
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	sort.Strings(p.a.Warnings)
	return p.a, nil
}

// Error is one problem in a configuration file.
type Error struct {
	// Line is the line the problem is on; 0 when it is about a key that is
	// missing altogether.
	Line int
	// Key is the full key ("agent1.sinks.k1.channel").
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.Key, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
}

// Errors are every problem found in one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errorsMax bounds the problems reported for one file.
const errorsMax = 100

type parser struct {
	agent string
	env   LookupEnv
	a     *Agent
	// top holds the agent's own keys ("sources", "channels", ...);
	// parts the keys of each kind's components by name.
	top   map[string]Property
	parts map[string]map[string]map[string]Property
	errs  Errors
	// agents are the agent names the file mentions, for the message
	// when the named one is missing.
	agents map[string]bool
	// lists caches the agent-level lists, so a duplicate is reported once.
	lists map[string][]string
}

func (p *parser) fail(line int, key, format string, args ...any) {
	if len(p.errs) < errorsMax {
		p.errs = append(p.errs, &Error{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
}

func (p *parser) full(rel string) string { return p.agent + "." + rel }

// listKeys are an agent's top-level keys and the kind each lists.
var listKeys = map[string]string{"sources": "sources", "channels": "channels", "sinks": "sinks", "sinkgroups": "sinkgroups"}

// collect sorts the agent's properties into top-level keys and component
// keys, substituting ${env:NAME} in values.
func (p *parser) collect(props []Property) {
	p.top = map[string]Property{}
	p.parts = map[string]map[string]map[string]Property{}
	p.agents = map[string]bool{}
	for _, prop := range props {
		name, rest, ok := strings.Cut(prop.Key, ".")
		if ok {
			p.agents[name] = true
		}
		if !ok || name != p.agent {
			continue
		}
		value, err := expandEnv(prop.Value, p.env)
		if err != nil {
			p.fail(prop.Line, prop.Key, "%v", err)
			continue
		}
		prop.Value = value
		group, after, nested := strings.Cut(rest, ".")
		if _, isList := listKeys[group]; !nested || !isList {
			p.top[rest] = prop
			continue
		}
		comp, key, ok := strings.Cut(after, ".")
		if !ok || comp == "" || key == "" {
			p.fail(prop.Line, prop.Key, "want %s.%s.<name>.<key>", p.agent, group)
			continue
		}
		if p.parts[group] == nil {
			p.parts[group] = map[string]map[string]Property{}
		}
		if p.parts[group][comp] == nil {
			p.parts[group][comp] = map[string]Property{}
		}
		p.parts[group][comp][key] = prop
	}
}

// envRefsMax bounds the substitutions in one value.
const envRefsMax = 64

// expandEnv replaces each ${env:NAME} in value; an unset NAME is an error.
func expandEnv(value string, env LookupEnv) (string, error) {
	var b strings.Builder
	for i := 0; ; i++ {
		start := strings.Index(value, "${env:")
		if start < 0 {
			b.WriteString(value)
			return b.String(), nil
		}
		if i >= envRefsMax {
			return "", fmt.Errorf("more than %d ${env:...} references", envRefsMax)
		}
		end := strings.IndexByte(value[start:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${env:...} in %q", value)
		}
		name := value[start+len("${env:") : start+end]
		if env == nil {
			return "", fmt.Errorf("${env:%s}: no environment to read it from", name)
		}
		v, ok := env(name)
		if !ok {
			return "", fmt.Errorf("${env:%s}: environment variable %s is not set", name, name)
		}
		b.WriteString(value[:start])
		b.WriteString(v)
		value = value[start+end+1:]
	}
}

// names splits a list value on blanks, reporting duplicates; prop.Key is
// relative to the agent.
func (p *parser) names(prop Property) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Fields(prop.Value) {
		if seen[n] {
			p.fail(prop.Line, p.full(prop.Key), "%s is listed twice", n)
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// build turns the collected keys into components and checks them.
func (p *parser) build() {
	if len(p.top) == 0 && len(p.parts) == 0 {
		known := make([]string, 0, len(p.agents))
		for n := range p.agents {
			known = append(known, n)
		}
		sort.Strings(known)
		p.fail(0, p.agent, "no agent named %s in the file (agents: %s)", p.agent, strings.Join(known, ", "))
		return
	}
	channels := p.buildChannels()
	p.buildSources(channels)
	p.buildSinks(channels)
	p.buildSinkGroups()
	p.warnUnlisted()
	p.warnUnusedChannels()
	for _, key := range sortedKeys(p.top) {
		if _, ok := listKeys[key]; !ok && key != "configfilters" {
			p.a.Warnings = append(p.a.Warnings, fmt.Sprintf("line %d: %s: unknown key, ignored", p.top[key].Line, p.full(key)))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// component builds the named component of a kind from its keys.
func (p *parser) component(kind Kind, group, name string, listLine int) (Component, bool) {
	keys := p.parts[group][name]
	c := Component{Kind: kind, Name: name, Params: keys, Line: listLine}
	if c.Params == nil {
		c.Params = map[string]Property{}
	}
	typeKey := p.full(group + "." + name + ".type")
	t, ok := keys["type"]
	if !ok {
		p.fail(listLine, typeKey, "missing required key (the %s's type: one of %s)", kind, strings.Join(TypeNames(kind), ", "))
		return c, false
	}
	spec, ok := lookupSpec(kind, t.Value)
	if !ok {
		p.fail(t.Line, typeKey, "unknown %s type %q (known: %s)", kind, t.Value, strings.Join(TypeNames(kind), ", "))
		return c, false
	}
	c.Type, c.spec = spec.name, spec
	p.checkKeys(&c, group)
	return c, true
}

// checkKeys checks the required keys and every typed key's value.
func (p *parser) checkKeys(c *Component, group string) {
	prefix := group + "." + c.Name + "."
	for _, key := range c.spec.required {
		if _, ok := c.Params[key]; !ok {
			p.fail(c.Line, p.full(prefix+key), "missing required key of a %s %s", c.Type, c.Kind)
		}
	}
	for _, oneOf := range c.spec.requiredOneOf {
		found := false
		for _, key := range oneOf {
			_, ok := c.Params[key]
			found = found || ok
		}
		if !found {
			p.fail(c.Line, p.full(prefix+oneOf[0]), "missing required key of a %s %s (or its older name %s)",
				c.Type, c.Kind, strings.Join(oneOf[1:], ", "))
		}
	}
	for _, key := range sortedKeys(c.Params) {
		prop := c.Params[key]
		ks, ok := c.spec.keys[key]
		if !ok {
			continue
		}
		if err := ks.check(prop.Value); err != nil {
			p.fail(prop.Line, p.full(prefix+key), "%v", err)
		}
	}
}

func (ks keySpec) check(value string) error {
	switch ks.kind {
	case valueInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", value)
		}
		if n < ks.min || n > ks.max {
			return fmt.Errorf("%d is outside %d..%d", n, ks.min, ks.max)
		}
	case valueBool:
		if _, err := parseBool(value); err != nil {
			return err
		}
	case valueString:
		if len(ks.choices) > 0 && !slices.Contains(ks.choices, value) {
			return fmt.Errorf("%q is not one of %s", value, strings.Join(ks.choices, ", "))
		}
	}
	return nil
}

func parseBool(value string) (bool, error) {
	switch strings.ToLower(value) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", value)
}

// Int returns an integer key's value, or its type's default.
func (c *Component) Int(key string) int64 {
	ks, ok := c.spec.keys[key]
	if !ok || ks.kind != valueInt {
		panic(fmt.Sprintf("config: %s type %s has no integer key %s", c.Kind, c.Type, key))
	}
	prop, ok := c.Params[key]
	if !ok {
		return ks.def
	}
	n, _ := strconv.ParseInt(prop.Value, 10, 64) // checked when parsed
	return n
}

// Bool returns a boolean key's value, or its type's default.
func (c *Component) Bool(key string) bool {
	ks, ok := c.spec.keys[key]
	if !ok || ks.kind != valueBool {
		panic(fmt.Sprintf("config: %s type %s has no boolean key %s", c.Kind, c.Type, key))
	}
	prop, ok := c.Params[key]
	if !ok {
		return ks.def == 1
	}
	b, _ := parseBool(prop.Value) // checked when parsed
	return b
}

// String returns a key's value, or its type's default.
func (c *Component) String(key string) string {
	if prop, ok := c.Params[key]; ok {
		return prop.Value
	}
	return c.spec.keys[key].text
}

// Has reports whether the file set the key.
func (c *Component) Has(key string) bool {
	_, ok := c.Params[key]
	return ok
}

// BatchSize is the batch the component moves in one channel transaction:
// the first of its type's batch keys that the file sets, else the first's
// default; 1 for types that move one event at a time.
func (c *Component) BatchSize() int64 {
	if len(c.spec.batchKeys) == 0 {
		return 1
	}
	for _, key := range c.spec.batchKeys {
		if c.Has(key) {
			return c.Int(key)
		}
	}
	return c.Int(c.spec.batchKeys[0])
}

// batchProperty is the property that set the batch size, for messages.
func (c *Component) batchProperty() (string, Property, bool) {
	for _, key := range c.spec.batchKeys {
		if prop, ok := c.Params[key]; ok {
			return key, prop, true
		}
	}
	if len(c.spec.batchKeys) > 0 {
		return c.spec.batchKeys[0], Property{Line: c.Line}, true
	}
	return "", Property{}, false
}
