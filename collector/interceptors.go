package collector

import (
	"fmt"
	"strconv"

	"github.com/sluice-sim/sluice/collector/config"
	"github.com/sluice-sim/sluice/sim"
)

// interceptor changes events between a source and its channels.
type interceptor func(e Event) Event

// newInterceptor builds one of Flume's header interceptors: timestamp
// (header "timestamp", milliseconds since the epoch), host (header "host",
// the node's name) and static (a fixed key and value). Each keeps an
// existing header when preserveExisting says so (Flume's defaults: false,
// false, true).
func newInterceptor(env sim.Env, ic config.Interceptor) (interceptor, error) {
	param := func(key, def string) string {
		if p, ok := ic.Params[key]; ok {
			return p.Value
		}
		return def
	}
	preserve := func(def bool) (bool, error) {
		v := param("preserveExisting", strconv.FormatBool(def))
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("line %d: interceptor %s: preserveExisting %q is not true or false", ic.Line, ic.Name, v)
		}
		return b, nil
	}
	var key string
	var value func() string
	var keep bool
	var err error
	switch ic.Type {
	case "timestamp", "org.apache.flume.interceptor.TimestampInterceptor$Builder":
		key = param("header", "timestamp")
		value = func() string { return strconv.FormatInt(env.Clock.Now().UnixMilli(), 10) }
		keep, err = preserve(false)
	case "host", "org.apache.flume.interceptor.HostInterceptor$Builder":
		key = param("hostHeader", "host")
		value = func() string { return env.Node }
		keep, err = preserve(false)
	case "static", "org.apache.flume.interceptor.StaticInterceptor$Builder":
		key = param("key", "key")
		v := param("value", "value")
		value = func() string { return v }
		keep, err = preserve(true)
	default:
		return nil, fmt.Errorf("line %d: interceptor %s: type %q is not supported yet (supported: timestamp, host, static)", ic.Line, ic.Name, ic.Type)
	}
	if err != nil {
		return nil, err
	}
	return func(e Event) Event {
		if _, ok := e.Headers[key]; ok && keep {
			return e
		}
		h := make(map[string]string, len(e.Headers)+1)
		for k, v := range e.Headers {
			h[k] = v
		}
		h[key] = value()
		e.Headers = h
		return e
	}, nil
}
