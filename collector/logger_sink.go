package collector

import (
	"fmt"
	"strings"

	"github.com/sluice-sim/sluice/sim"
)

// LoggerSink logs each event as Flume's LoggerSink does:
//
//	Event: { headers:{k=v, k2=v2} body: 48 65 6C 6C 6F       Hello }
//
// the first maxBytesToLog bytes of the body as a hex dump (16 to a row,
// padded) followed by those bytes as text, '.' for what is not printable.
type LoggerSink struct {
	name          string
	log           sim.Logger
	maxBytesToLog int
}

// Name is the sink's name.
func (s *LoggerSink) Name() string { return s.name }

// Deliver logs the events.
func (s *LoggerSink) Deliver(events []Event, done func(error)) {
	for _, e := range events {
		s.log.Logf("Event: %s", DumpEvent(e, s.maxBytesToLog))
	}
	done(nil)
}

// Stop does nothing: the log is the agent's.
func (s *LoggerSink) Stop() {}

// DumpEvent formats an event as Flume's EventHelper.dumpEvent does.
func DumpEvent(e Event, maxBytes int) string {
	var b strings.Builder
	b.WriteString("{ headers:{")
	for i, k := range sortedHeaderKeys(e.Headers) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + e.Headers[k])
	}
	b.WriteString("} body:")
	body := e.Body[:min(len(e.Body), maxBytes)]
	for row := 0; row < len(body); row += 16 {
		if row > 0 {
			b.WriteString("\n")
		}
		chunk := body[row:min(row+16, len(body))]
		b.WriteString(" ")
		for k := 0; k < 16; k++ {
			if k < len(chunk) {
				fmt.Fprintf(&b, "%02X ", chunk[k])
			} else {
				b.WriteString("   ")
			}
		}
		for _, c := range chunk {
			if c >= ' ' && c < 127 {
				b.WriteByte(c)
			} else {
				b.WriteByte('.')
			}
		}
	}
	b.WriteString(" }")
	return b.String()
}
