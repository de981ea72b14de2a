package collector

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-sim/sluice/collector/config"
)

func buildInterceptor(t *testing.T, r *rig, typ string, params map[string]string) interceptor {
	t.Helper()
	ic := config.Interceptor{Name: "i", Type: typ, Params: map[string]config.Property{}, Line: 7}
	for k, v := range params {
		ic.Params[k] = config.Property{Key: k, Value: v, Line: 9}
	}
	f, err := newInterceptor(r.env, ic)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestInterceptors(t *testing.T) {
	r := newRig(1)
	ev := func(body string, h map[string]string) Event { return Event{Body: []byte(body), Headers: h} }

	rm := buildInterceptor(t, r, "remove_header", map[string]string{"withName": "a", "fromList": "b , c", "matching": "^x-"})
	out, ok := rm(ev("b", map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "x-y": "5"}))
	if !ok || len(out.Headers) != 1 || out.Headers["d"] != "4" {
		t.Fatalf("remove_header: %v", out.Headers)
	}

	sr := buildInterceptor(t, r, "search_replace", map[string]string{"searchPattern": `user=(\w+)`, "replaceString": "user=<$1>x"})
	if out, _ := sr(ev("login user=ann ok", nil)); string(out.Body) != "login user=<ann>x ok" {
		t.Fatalf("search_replace: %q", out.Body)
	}

	keep := buildInterceptor(t, r, "regex_filter", map[string]string{"regex": "^ERROR"})
	drop := buildInterceptor(t, r, "regex_filter", map[string]string{"regex": "^DEBUG", "excludeEvents": "true"})
	if _, ok := keep(ev("ERROR x", nil)); !ok {
		t.Fatal("regex_filter dropped a match")
	}
	if _, ok := keep(ev("INFO x", nil)); ok {
		t.Fatal("regex_filter kept a non-match")
	}
	if _, ok := drop(ev("DEBUG x", nil)); ok {
		t.Fatal("regex_filter with excludeEvents kept a match")
	}

	ex := buildInterceptor(t, r, "regex_extractor", map[string]string{
		"regex": `^(\d\d\d\d-\d\d-\d\d \d\d:\d\d) (\w+)`, "serializers": "ts lvl",
		"serializers.ts.type": "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer", "serializers.ts.name": "timestamp",
		"serializers.ts.pattern": "yyyy-MM-dd HH:mm", "serializers.lvl.name": "level",
	})
	out, _ = ex(ev("2026-11-30 10:05 WARN disk", nil))
	if want := time.Date(2026, 11, 30, 10, 5, 0, 0, time.UTC).UnixMilli(); out.Headers["timestamp"] != itoa(want) || out.Headers["level"] != "WARN" {
		t.Fatalf("regex_extractor: %v", out.Headers)
	}
	if out, _ := ex(ev("no match", nil)); len(out.Headers) != 0 {
		t.Fatalf("regex_extractor on a non-match: %v", out.Headers)
	}

	id := buildInterceptor(t, r, "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder", nil)
	a, _ := id(ev("x", nil))
	b, _ := id(ev("y", nil))
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid.MatchString(a.Headers["id"]) || a.Headers["id"] == b.Headers["id"] {
		t.Fatalf("uuid: %q %q", a.Headers["id"], b.Headers["id"])
	}
	if kept, _ := id(ev("z", map[string]string{"id": "mine"})); kept.Headers["id"] != "mine" {
		t.Fatalf("uuid replaced an existing id")
	}
}

func TestInterceptorErrorsNameTheKey(t *testing.T) {
	r := newRig(1)
	for _, c := range []struct {
		typ    string
		params map[string]string
		want   string
	}{
		{"regex_filter", map[string]string{"regex": "("}, "line 9: interceptor i: regex:"},
		{"search_replace", nil, "line 7: interceptor i: searchPattern: missing required key"},
		{"regex_extractor", map[string]string{"regex": "(a)", "serializers": "s1"}, "serializers.s1.name: missing required key"},
		{"regex_filter", map[string]string{"excludeEvents": "nope"}, `excludeEvents: "nope" is not true or false`},
	} {
		ic := config.Interceptor{Name: "i", Type: c.typ, Params: map[string]config.Property{}, Line: 7}
		for k, v := range c.params {
			ic.Params[k] = config.Property{Key: k, Value: v, Line: 9}
		}
		_, err := newInterceptor(r.env, ic)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.typ, c.params, err, c.want)
		}
	}
}

// TestRegexFilterInAnAgent drops events before the channel: the source
// still counts them accepted, the channel never sees them.
func TestRegexFilterInAnAgent(t *testing.T) {
	text := `a.sources = r1
a.channels = c1
a.sinks = k1
a.sources.r1.type = seq
a.sources.r1.totalEvents = 100
a.sources.r1.batchSize = 10
a.sources.r1.channels = c1
a.sources.r1.interceptors = f
a.sources.r1.interceptors.f.type = regex_filter
a.sources.r1.interceptors.f.regex = 7
a.channels.c1.type = memory
a.sinks.k1.type = logger
a.sinks.k1.channel = c1
`
	aw := newAgentWorld(t, 1, text, "a")
	aw.run(time.Second)
	if got := strings.Join(aw.bodies(), ","); got != "7,17,27,37,47,57,67,70,71,72,73,74,75,76,77,78,79,87,97" {
		t.Fatalf("logged %s", got)
	}
}
