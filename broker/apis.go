package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiRange is the versions of one API key the broker serves.
type apiRange struct {
	key      int16
	min, max int16
}

// servedAPIs lists every API key the broker answers, each registered by its
// own file (one file per API key, named after the key) from an init
// function. ApiVersions advertises exactly this table.
var servedAPIs []apiRange

// handlerFunc serves one decoded request; it answers through req.respond,
// now or later (a produce waiting for fsync, a fetch waiting for data).
type handlerFunc func(b *Broker, req *request)

var handlers = map[int16]handlerFunc{}

func serve(key, minVersion, maxVersion int16, h handlerFunc) {
	if minVersion < 0 || maxVersion < minVersion || maxVersion > kmsg.RequestForKey(key).MaxVersion() {
		panic("broker: bad version range for " + kmsg.NameForKey(key))
	}
	if _, dup := handlers[key]; dup {
		panic("broker: " + kmsg.NameForKey(key) + " served twice")
	}
	handlers[key] = h
	servedAPIs = append(servedAPIs, apiRange{key: key, min: minVersion, max: maxVersion})
	slices.SortFunc(servedAPIs, func(a, b apiRange) int { return int(a.key) - int(b.key) })
}

func servedRange(key int16) (apiRange, bool) {
	i := slices.IndexFunc(servedAPIs, func(r apiRange) bool { return r.key == key })
	if i < 0 {
		return apiRange{}, false
	}
	return servedAPIs[i], true
}
