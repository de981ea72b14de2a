// Package config reads Flume agent configurations: Java properties files in
// which one file may describe several agents ("a1.sources = r1 r2",
// "a1.sources.r1.type = netcat", ...). It resolves Flume's class names to
// the short type names, checks every component's keys against what its type
// needs, and reports each problem with the line and the key it is about, so
// a file written for Apache Flume either runs unmodified or is refused with
// a message that says where.
package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Property is one key and value of a properties file, with the line the
// key starts on.
type Property struct {
	Key   string
	Value string
	Line  int
}

// propertiesLinesMax bounds the logical lines read from one file, so that
// a runaway input cannot make parsing run without end.
const propertiesLinesMax = 1 << 20

// ReadProperties parses text in java.util.Properties' format: '#' and '!'
// comment lines, "key = value", "key: value" or "key value", a backslash at
// the end of a line continuing it on the next (whose leading blanks are
// skipped), and the escapes \t \n \r \f \uXXXX. Values are trimmed at both
// ends, as Flume's users expect of "capacity = 1000 ". A key given twice
// keeps its last value, as Java does.
func ReadProperties(text string) ([]Property, error) {
	physical := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var out []Property
	for i := 0; i < len(physical); i++ {
		if len(out) >= propertiesLinesMax {
			return nil, fmt.Errorf("line %d: more than %d properties", i+1, propertiesLinesMax)
		}
		start := i
		line := strings.TrimLeft(physical[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for endsInContinuation(line) && i+1 < len(physical) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(physical[i], " \t\f")
		}
		if endsInContinuation(line) {
			line = line[:len(line)-1]
		}
		key, value, err := splitProperty(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start+1, err)
		}
		out = append(out, Property{Key: key, Value: strings.TrimSpace(value), Line: start + 1})
	}
	return out, nil
}

// endsInContinuation reports whether a line ends in an odd number of
// backslashes: an even number are escaped backslashes.
func endsInContinuation(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty cuts a logical line at the first unescaped '=', ':' or
// blank, then skips blanks and at most one '=' or ':'.
func splitProperty(line string) (string, string, error) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, err := unescape(line[:end])
	if err != nil {
		return "", "", fmt.Errorf("key %q: %w", line[:end], err)
	}
	rest := strings.TrimLeft(line[end:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	value, err := unescape(rest)
	if err != nil {
		return "", "", fmt.Errorf("value of %s: %w", key, err)
	}
	return key, value, nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uXXXX escape`)
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
			if err != nil {
				return "", fmt.Errorf(`malformed \uXXXX escape %q`, s[i-1:i+5])
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
