package checkers

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// A plog behaves as an immutable slice, whichever version is appended to.
func TestPlogMatchesSlices(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		logs := []*plog{emptyPlog}
		models := [][]logEntry{nil}
		steps := rapid.IntRange(1, 3000).Draw(t, "steps")
		for range steps {
			// Mostly extend the newest version, sometimes branch from an
			// older one, as porcupine's backtracking does.
			from := len(logs) - 1
			if rapid.IntRange(0, 9).Draw(t, "branch") == 0 {
				from = rapid.IntRange(0, len(logs)-1).Draw(t, "from")
			}
			model := models[from]
			next := int64(0)
			if len(model) > 0 {
				next = model[len(model)-1].offset + 1
			}
			e := logEntry{
				offset: next + int64(rapid.IntRange(0, 2).Draw(t, "gap")),
				value:  int32(rapid.IntRange(0, 5).Draw(t, "value")),
			}
			logs = append(logs, logs[from].Append(e))
			models = append(models, append(slices.Clip(model), e))
		}
		for i, l := range logs {
			m := models[i]
			if l.Len() != len(m) {
				t.Fatalf("version %d: Len %d, want %d", i, l.Len(), len(m))
			}
			for j, e := range m {
				if l.At(j) != e {
					t.Fatalf("version %d: At(%d) = %v, want %v", i, j, l.At(j), e)
				}
				if l.Find(e.offset) != j {
					t.Fatalf("version %d: Find(%d) = %d, want %d", i, e.offset, l.Find(e.offset), j)
				}
			}
			if len(m) > 0 && l.Find(m[len(m)-1].offset+1) != -1 {
				t.Fatalf("version %d: Find past the end found something", i)
			}
		}
		// Equal and hash agree with the contents, between versions built
		// apart.
		for range 50 {
			i := rapid.IntRange(0, len(logs)-1).Draw(t, "i")
			j := rapid.IntRange(0, len(logs)-1).Draw(t, "j")
			rebuilt := emptyPlog
			for _, e := range models[j] {
				rebuilt = rebuilt.Append(e)
			}
			same := slices.Equal(models[i], models[j])
			if logs[i].Equal(rebuilt) != same || rebuilt.Equal(logs[i]) != same {
				t.Fatalf("Equal(%d, rebuilt %d) = %v, want %v", i, j, logs[i].Equal(rebuilt), same)
			}
			if same && logs[i].hash != rebuilt.hash {
				t.Fatalf("equal logs %d and %d hash differently", i, j)
			}
		}
	})
}

func TestPlogAppendOutOfOrderPanics(t *testing.T) {
	l := emptyPlog.Append(logEntry{offset: 5, value: 1})
	defer func() {
		if recover() == nil {
			t.Fatalf("append at offset 5 after 5 did not panic")
		}
	}()
	l.Append(logEntry{offset: 5, value: 2})
}

// A log deep enough for a trie of four levels reads back what went in.
func TestPlogDeep(t *testing.T) {
	const n = 40_000 // past 32^3 entries in the trie
	l := emptyPlog
	var versions []*plog
	for i := range n {
		l = l.Append(logEntry{offset: int64(2 * i), value: int32(i)})
		if i%4099 == 0 {
			versions = append(versions, l)
		}
	}
	if l.shift != 3*plogBits {
		t.Fatalf("shift = %d after %d appends, want %d", l.shift, n, 3*plogBits)
	}
	for i := range n {
		if e := l.At(i); e.offset != int64(2*i) || e.value != int32(i) {
			t.Fatalf("At(%d) = %+v", i, e)
		}
		if l.Find(int64(2*i)) != i || l.Find(int64(2*i+1)) != -1 {
			t.Fatalf("Find around offset %d wrong", 2*i)
		}
	}
	for k, v := range versions {
		if v.Len() != k*4099+1 || v.Last().value != int32(k*4099) {
			t.Fatalf("old version %d changed: len %d last %+v", k, v.Len(), v.Last())
		}
	}
}
