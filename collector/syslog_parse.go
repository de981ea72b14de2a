package collector

import (
	"strconv"
	"strings"
	"time"
)

// Syslog headers, as Flume's SyslogUtils names them.
const (
	syslogFacilityHeader = "Facility"
	syslogSeverityHeader = "Severity"
	syslogStatusHeader   = "flume.syslog.status"
)

// parseSyslog turns one syslog message into an event as Flume's syslog
// sources do: the priority becomes the Facility and Severity headers, the
// timestamp (RFC 5424's, or RFC 3164's "Mmm dd hh:mm:ss" read in UTC in
// the year that puts it nearest now) the timestamp header in milliseconds,
// the hostname the host header; the body is the message after them, or
// the whole line with keepFields. A line that parses as neither is kept
// whole with flume.syslog.status "Invalid".
func parseSyslog(line []byte, now time.Time, keepFields bool) Event {
	s := string(line)
	h := map[string]string{}
	e := Event{Headers: h, Body: line}
	pri, rest, ok := syslogPriority(s)
	if !ok {
		h[syslogStatusHeader] = "Invalid"
		return e
	}
	h[syslogFacilityHeader] = strconv.Itoa(pri / 8)
	h[syslogSeverityHeader] = strconv.Itoa(pri % 8)
	var msg string
	if after, is5424 := strings.CutPrefix(rest, "1 "); is5424 {
		msg, ok = parse5424(after, h)
	} else {
		msg, ok = parse3164(rest, now, h)
	}
	if !ok {
		h[syslogStatusHeader] = "Invalid"
		return e
	}
	if !keepFields {
		e.Body = []byte(msg)
	}
	return e
}

func syslogPriority(s string) (int, string, bool) {
	end := strings.IndexByte(s, '>')
	if !strings.HasPrefix(s, "<") || end < 2 || end > 4 {
		return 0, "", false
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri < 0 || pri > 191 {
		return 0, "", false
	}
	return pri, s[end+1:], true
}

// parse5424 reads "TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]".
func parse5424(s string, h map[string]string) (string, bool) {
	fields := strings.SplitN(s, " ", 6)
	if len(fields) < 6 {
		return "", false
	}
	if ts := fields[0]; ts != "-" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return "", false
		}
		h["timestamp"] = strconv.FormatInt(t.UnixMilli(), 10)
	}
	if fields[1] != "-" {
		h["host"] = fields[1]
	}
	rest := fields[5]
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else if strings.HasPrefix(rest, "[") {
		end := structuredDataEnd(rest)
		if end < 0 {
			return "", false
		}
		rest = rest[end:]
	} else {
		return "", false
	}
	return strings.TrimPrefix(rest, " "), true
}

// structuredDataEnd finds where RFC 5424 structured data ("[id k="v"]...")
// ends, honouring escaped quotes and brackets inside values.
func structuredDataEnd(s string) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ']' && !inQuote:
			if i+1 == len(s) || s[i+1] != '[' {
				return i + 1
			}
		}
	}
	return -1
}

// parse3164 reads "Mmm dd hh:mm:ss HOSTNAME MSG".
func parse3164(s string, now time.Time, h map[string]string) (string, bool) {
	if len(s) < 16 || s[15] != ' ' {
		return "", false
	}
	t, err := time.Parse(time.Stamp, s[:15])
	if err != nil {
		return "", false
	}
	now = now.UTC()
	best := t.AddDate(now.Year(), 0, 0)
	for _, y := range []int{now.Year() - 1, now.Year() + 1} {
		c := t.AddDate(y, 0, 0)
		if c.Sub(now).Abs() < best.Sub(now).Abs() {
			best = c
		}
	}
	h["timestamp"] = strconv.FormatInt(best.UnixMilli(), 10)
	host, msg, ok := strings.Cut(s[16:], " ")
	if !ok || host == "" {
		return "", false
	}
	h["host"] = host
	return msg, true
}
