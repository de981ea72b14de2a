package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
)

// statusLine shows a long run's progress: on a terminal, one line
// rewritten in place; elsewhere (a log file, CI), a plain line at most
// every few seconds, so the output reads as lines.
type statusLine struct {
	out       io.Writer
	terminal  bool
	shown     bool
	lastPlain time.Time
}

// statusPlainEvery is how often a status not on a terminal prints a line.
const statusPlainEvery = 5 * time.Second

func newStatusLine(out io.Writer) *statusLine {
	f, ok := out.(*os.File)
	return &statusLine{out: out, terminal: ok && isatty.IsTerminal(f.Fd())}
}

// show displays line; final forces a plain line out even if one was
// printed a moment ago.
func (s *statusLine) show(line string, final bool) {
	if s.terminal {
		fmt.Fprintf(s.out, "\r\033[K%s", line)
		s.shown = true
		return
	}
	if now := time.Now(); final || now.Sub(s.lastPlain) >= statusPlainEvery {
		s.lastPlain = now
		fmt.Fprintln(s.out, line)
	}
}

// done ends the rewritten line on a terminal.
func (s *statusLine) done() {
	if s.terminal && s.shown {
		fmt.Fprintln(s.out)
	}
}
