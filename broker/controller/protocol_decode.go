package controller

import (
	"math"

	"github.com/sluice-sim/sluice/broker/metadata"
)

// Most controller frames are heartbeats and metadata fetches with nothing
// new: a few numbers and strings, written by json.Marshal. encoding/json
// decodes them by reflection, a few percent of a cluster seed, so they are
// decoded here when they hold only what json.Marshal writes for scalar
// fields (no spaces, no escapes, plain integers, ASCII strings) and only
// known keys. Anything else (a snapshot or records, a partition, ISR or
// configs, an escape, an unexpected key) is left to encoding/json, which
// then decides everything, errors included. Where this decodes, it gives
// what encoding/json would (TestFastDecodersMatchJSON).

// fastDecodeRequest decodes body into r; false if it left body alone for
// encoding/json.
func fastDecodeRequest(body []byte, r *Request) bool {
	var out Request
	ok := fastObject(body, func(key []byte, d *fastDecoder) bool {
		switch string(key) {
		case "id":
			return d.uint64(&out.ID)
		case "op":
			var op string
			ok := d.string(&op)
			out.Op = Op(op)
			return ok
		case "broker_id":
			return fastInt(d, &out.BrokerID)
		case "broker_epoch":
			return fastInt(d, &out.BrokerEpoch)
		case "addr":
			return d.string(&out.Addr)
		case "incarnation":
			return d.string(&out.Incarnation)
		case "metadata_offset":
			return fastInt(d, &out.MetadataOffset)
		case "topic":
			return d.string(&out.Topic)
		case "topic_id":
			return d.string(&out.TopicID)
		case "partitions":
			return fastInt(d, &out.Partitions)
		case "replication_factor":
			return fastInt(d, &out.ReplicationFactor)
		case "unclean":
			return d.bool(&out.Unclean)
		case "partition":
			return fastInt(d, &out.Partition)
		case "leader_epoch":
			return fastInt(d, &out.LeaderEpoch)
		case "partition_epoch":
			return fastInt(d, &out.PartitionEpoch)
		case "from_offset":
			return fastInt(d, &out.FromOffset)
		}
		return false
	})
	if ok {
		*r = out
	}
	return ok
}

// fastDecodeResponse is fastDecodeRequest for a response.
func fastDecodeResponse(body []byte, r *Response) bool {
	var out Response
	ok := fastObject(body, func(key []byte, d *fastDecoder) bool {
		switch string(key) {
		case "id":
			return d.uint64(&out.ID)
		case "code":
			return fastInt(d, &out.Code)
		case "leader_hint":
			return d.string(&out.LeaderHint)
		case "broker_epoch":
			return fastInt(d, &out.BrokerEpoch)
		case "fenced":
			return d.bool(&out.Fenced)
		case "topic_id":
			return d.string(&out.TopicID)
		case "offset":
			return fastInt(d, &out.Offset)
		case "committed":
			return fastInt(d, &out.Committed)
		case "delta":
			// A delta with nothing new: its range alone.
			if out.Delta == nil {
				out.Delta = &metadata.Delta{}
			}
			delta := out.Delta
			return d.object(func(key []byte, d *fastDecoder) bool {
				switch string(key) {
				case "from":
					return fastInt(d, &delta.From)
				case "through":
					return fastInt(d, &delta.Through)
				}
				return false
			})
		}
		return false
	})
	if ok {
		*r = out
	}
	return ok
}

// fastDecoder reads the JSON subset described above from src at pos.
type fastDecoder struct {
	src []byte
	pos int
}

// fastObject decodes src, one whole object, calling field with each key
// and a decoder at its value; false if src is outside the subset or a
// field refused its value.
func fastObject(src []byte, field func(key []byte, d *fastDecoder) bool) bool {
	d := fastDecoder{src: src}
	return d.object(field) && d.pos == len(src)
}

// fastFieldsMax bounds the fields of one object: more is not the subset.
const fastFieldsMax = 64

func (d *fastDecoder) object(field func(key []byte, d *fastDecoder) bool) bool {
	if !d.take('{') {
		return false
	}
	if d.take('}') {
		return true
	}
	for range fastFieldsMax {
		key, ok := d.text()
		if !ok || !d.take(':') || !field(key, d) {
			return false
		}
		if d.take('}') {
			return true
		}
		if !d.take(',') {
			return false
		}
	}
	return false
}

func (d *fastDecoder) take(c byte) bool {
	if d.pos < len(d.src) && d.src[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// string reads a string of printable ASCII without escapes.
func (d *fastDecoder) string(s *string) bool {
	text, ok := d.text()
	if ok {
		*s = string(text)
	}
	return ok
}

// text is string's text, still in src.
func (d *fastDecoder) text() ([]byte, bool) {
	if !d.take('"') {
		return nil, false
	}
	start := d.pos
	for ; d.pos < len(d.src); d.pos++ {
		switch c := d.src[d.pos]; {
		case c == '"':
			d.pos++
			return d.src[start : d.pos-1], true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

func (d *fastDecoder) bool(b *bool) bool {
	for _, lit := range [...]string{"true", "false"} {
		if end := d.pos + len(lit); end <= len(d.src) && string(d.src[d.pos:end]) == lit {
			*b, d.pos = lit == "true", end
			return true
		}
	}
	return false
}

// integer reads a plain integer: an optional minus, then 0 or digits not
// starting with 0, up to a delimiter; its magnitude fits a uint64.
func (d *fastDecoder) integer() (magnitude uint64, negative, ok bool) {
	negative = d.take('-')
	first := d.pos
	for ; d.pos < len(d.src) && d.src[d.pos] >= '0' && d.src[d.pos] <= '9'; d.pos++ {
		digit := uint64(d.src[d.pos] - '0')
		if magnitude > (math.MaxUint64-digit)/10 {
			return 0, false, false
		}
		magnitude = magnitude*10 + digit
	}
	n := d.pos - first
	if n == 0 || (n > 1 && d.src[first] == '0') || d.pos == len(d.src) {
		return 0, false, false
	}
	if c := d.src[d.pos]; c != ',' && c != '}' {
		return 0, false, false // a fraction, an exponent, or not a number
	}
	return magnitude, negative, true
}

func (d *fastDecoder) uint64(v *uint64) bool {
	magnitude, negative, ok := d.integer()
	if !ok || negative { // even -0: encoding/json refuses it for a uint64
		return false
	}
	*v = magnitude
	return true
}

// fastInt reads a signed integer that fits T, as encoding/json requires.
func fastInt[T ~int16 | ~int32 | ~int64](d *fastDecoder, v *T) bool {
	magnitude, negative, ok := d.integer()
	if !ok || magnitude > math.MaxInt64+1 || (!negative && magnitude > math.MaxInt64) {
		return false
	}
	n := int64(magnitude) // math.MinInt64 from its magnitude too
	if negative {
		n = -n
	}
	if int64(T(n)) != n {
		return false
	}
	*v = T(n)
	return true
}
