package collector

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// interceptor changes an event between a source and its channels, or
// drops it (ok false).
type interceptor func(e Event) (out Event, ok bool)

// newInterceptor builds one of Flume's interceptors:
//   - timestamp (header "timestamp", milliseconds since the epoch), host
//     (header "host", the node's name), static (a fixed key and value) and
//     uuid (header "id", a random UUID drawn from the node's stream), each
//     keeping an existing header when preserveExisting says so (Flume's
//     defaults: false, false, true, true);
//   - remove_header: withName, fromList (split by fromListSeparator) and
//     matching (a regex on names);
//   - search_replace: searchPattern replaced by replaceString in the body;
//   - regex_filter: keeps the events whose body matches regex, or drops
//     them with excludeEvents;
//   - regex_extractor: regex's groups into the headers that serializers
//     name (serializers.<s>.name), the default serializer or
//     org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer
//     (a time in pattern's layout into milliseconds).
func newInterceptor(env sim.Env, ic config.Interceptor) (interceptor, error) {
	b := &icBuilder{ic: ic}
	var f interceptor
	switch ic.Type {
	case "timestamp", "org.apache.flume.interceptor.TimestampInterceptor$Builder":
		f = b.setHeader(b.param("header", "timestamp"), b.preserve(false), func() string { return strconv.FormatInt(env.Clock.Now().UnixMilli(), 10) })
	case "host", "org.apache.flume.interceptor.HostInterceptor$Builder":
		f = b.setHeader(b.param("hostHeader", "host"), b.preserve(false), func() string { return env.Node })
	case "static", "org.apache.flume.interceptor.StaticInterceptor$Builder":
		v := b.param("value", "value")
		f = b.setHeader(b.param("key", "key"), b.preserve(true), func() string { return v })
	case "uuid", "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder":
		prefix := b.param("prefix", "")
		f = b.setHeader(b.param("headerName", "id"), b.preserve(true), func() string { return prefix + randomUUID(env) })
	case "remove_header", "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder":
		f = b.removeHeader()
	case "search_replace", "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder":
		f = b.searchReplace()
	case "regex_filter", "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder":
		f = b.regexFilter()
	case "regex_extractor", "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder":
		f = b.regexExtractor()
	default:
		return nil, fmt.Errorf("line %d: interceptor %s: type %q is not supported (supported: timestamp, host, static, uuid, remove_header, search_replace, regex_filter, regex_extractor)", ic.Line, ic.Name, ic.Type)
	}
	if b.err != nil {
		return nil, b.err
	}
	return f, nil
}

// icBuilder reads an interceptor's keys, keeping the first error.
type icBuilder struct {
	ic  config.Interceptor
	err error
}

func (b *icBuilder) fail(key, format string, args ...any) {
	if b.err == nil {
		line := b.ic.Line
		if p, ok := b.ic.Params[key]; ok {
			line = p.Line
		}
		b.err = fmt.Errorf("line %d: interceptor %s: %s: %s", line, b.ic.Name, key, fmt.Sprintf(format, args...))
	}
}

func (b *icBuilder) param(key, def string) string {
	if p, ok := b.ic.Params[key]; ok {
		return p.Value
	}
	return def
}

func (b *icBuilder) boolParam(key string, def bool) bool {
	v := b.param(key, strconv.FormatBool(def))
	x, err := strconv.ParseBool(v)
	if err != nil {
		b.fail(key, "%q is not true or false", v)
	}
	return x
}

func (b *icBuilder) preserve(def bool) bool { return b.boolParam("preserveExisting", def) }

func (b *icBuilder) regex(key, def string) *regexp.Regexp {
	v := b.param(key, def)
	re, err := regexp.Compile(v)
	if err != nil {
		b.fail(key, "%q is not a regular expression: %v", v, err)
		return regexp.MustCompile("$^")
	}
	return re
}

func copyHeaders(h map[string]string, extra int) map[string]string {
	out := make(map[string]string, len(h)+extra)
	for k, v := range h {
		out[k] = v
	}
	return out
}

func (b *icBuilder) setHeader(key string, keep bool, value func() string) interceptor {
	return func(e Event) (Event, bool) {
		if _, ok := e.Headers[key]; ok && keep {
			return e, true
		}
		h := copyHeaders(e.Headers, 1)
		h[key] = value()
		e.Headers = h
		return e, true
	}
}

func (b *icBuilder) removeHeader() interceptor {
	names := map[string]bool{}
	if n := b.param("withName", ""); n != "" {
		names[n] = true
	}
	if list := b.param("fromList", ""); list != "" {
		sep := b.regex("fromListSeparator", `\s*,\s*`)
		for _, n := range sep.Split(list, -1) {
			names[n] = true
		}
	}
	var matching *regexp.Regexp
	if _, ok := b.ic.Params["matching"]; ok {
		matching = b.regex("matching", "")
	}
	return func(e Event) (Event, bool) {
		var h map[string]string
		for _, k := range sortedHeaderKeys(e.Headers) {
			if names[k] || (matching != nil && matching.MatchString(k)) {
				if h == nil {
					h = copyHeaders(e.Headers, 0)
				}
				delete(h, k)
			}
		}
		if h != nil {
			e.Headers = h
		}
		return e, true
	}
}

func (b *icBuilder) searchReplace() interceptor {
	if _, ok := b.ic.Params["searchPattern"]; !ok {
		b.fail("searchPattern", "missing required key")
	}
	re := b.regex("searchPattern", "")
	// Java's replacement syntax names groups $1; Go's reads "$1x" as a
	// group named "1x", so each $n becomes ${n}.
	repl := regexp.MustCompile(`\$(\d+)`).ReplaceAllString(b.param("replaceString", ""), "$${$1}")
	return func(e Event) (Event, bool) {
		e.Body = re.ReplaceAll(e.Body, []byte(repl))
		return e, true
	}
}

func (b *icBuilder) regexFilter() interceptor {
	re := b.regex("regex", ".*")
	exclude := b.boolParam("excludeEvents", false)
	return func(e Event) (Event, bool) {
		return e, re.Match(e.Body) != exclude
	}
}

// regexExtractorSerializer turns one capture group into a header.
type regexExtractorSerializer struct {
	header string
	// layout, when set, parses the group as a time into milliseconds.
	layout string
}

func (b *icBuilder) regexExtractor() interceptor {
	if _, ok := b.ic.Params["regex"]; !ok {
		b.fail("regex", "missing required key")
	}
	re := b.regex("regex", "")
	var sers []regexExtractorSerializer
	for _, s := range strings.Fields(b.param("serializers", "")) {
		prefix := "serializers." + s + "."
		name := b.param(prefix+"name", "")
		if name == "" {
			b.fail(prefix+"name", "missing required key: the header serializer %s fills", s)
		}
		ser := regexExtractorSerializer{header: name}
		switch t := b.param(prefix+"type", "DEFAULT"); t {
		case "DEFAULT", "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer":
		case "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer":
			ser.layout = javaTimeLayout(b.param(prefix+"pattern", ""))
			if ser.layout == "" {
				b.fail(prefix+"pattern", "missing required key: the time pattern")
			}
		default:
			b.fail(prefix+"type", "serializer type %q is not supported", t)
		}
		sers = append(sers, ser)
	}
	return func(e Event) (Event, bool) {
		m := re.FindSubmatch(e.Body)
		if m == nil {
			return e, true
		}
		h := copyHeaders(e.Headers, len(sers))
		for i, ser := range sers {
			if i+1 >= len(m) {
				break
			}
			v := string(m[i+1])
			if ser.layout != "" {
				t, err := time.Parse(ser.layout, v)
				if err != nil {
					continue
				}
				v = strconv.FormatInt(t.UnixMilli(), 10)
			}
			h[ser.header] = v
		}
		e.Headers = h
		return e, true
	}
}

// javaTimeLayout translates the common letters of a Java SimpleDateFormat
// pattern into a Go layout.
func javaTimeLayout(p string) string {
	pairs := []string{"yyyy", "2006", "yy", "06", "MMM", "Jan", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "SSS", "000", "Z", "-0700"}
	r := strings.NewReplacer(pairs...)
	return r.Replace(p)
}

// randomUUID draws a version 4 UUID from the node's random stream, so the
// simulated world stays deterministic.
func randomUUID(env sim.Env) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := env.Rand.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
