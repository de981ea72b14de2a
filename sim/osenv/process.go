package osenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"

	"github.com/sluice-sim/sluice/sim"
)

// Processes runs commands on this node (sim.Processes): reader goroutines
// hand their output to the loop a chunk of lines at a time, waiting when
// the loop's queue is full or the process is paused, so a command that
// writes faster than the node takes its lines blocks on its pipe.
func (n *Node) Processes() sim.Processes { return nodeProcesses{n} }

type nodeProcesses struct{ n *Node }

// processChunkLinesMax bounds the lines one posted callback carries.
const processChunkLinesMax = 256

type process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	// resumed is signalled when paused turns false or the process is
	// killed.
	resumed *sync.Cond
	paused  bool
	killed  bool
}

func (p nodeProcesses) Start(argv []string, onLine func([]byte, bool), onExit func(error)) (sim.Process, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("start process: no command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// Its own process group, so that Kill reaches what a shell started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	pr := &process{cmd: cmd}
	pr.resumed = sync.NewCond(&pr.mu)
	var readers sync.WaitGroup
	readers.Add(2)
	go pr.read(p.n, stdout, false, onLine, &readers)
	go pr.read(p.n, stderr, true, onLine, &readers)
	go func() {
		readers.Wait()
		err := cmd.Wait()
		p.n.Post(func() { onExit(err) })
	}()
	return pr, nil
}

// read hands r's lines to the loop until r ends; if the node stopped, it
// kills the process.
func (pr *process) read(n *Node, r io.Reader, stderr bool, onLine func([]byte, bool), done *sync.WaitGroup) {
	defer done.Done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		pr.mu.Lock()
		for pr.paused && !pr.killed {
			pr.resumed.Wait()
		}
		pr.mu.Unlock()
		var lines [][]byte
		var err error
		for len(lines) < processChunkLinesMax {
			var line []byte
			line, err = readLine(br)
			if len(line) > 0 || err == nil {
				lines = append(lines, line)
			}
			if err != nil || br.Buffered() == 0 {
				break
			}
		}
		if len(lines) > 0 && !n.Post(func() {
			for _, l := range lines {
				onLine(l, stderr)
			}
		}) {
			pr.kill()
			io.Copy(io.Discard, br)
			return
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, at most
// sim.ProcessLineBytesMax bytes of it.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if err == bufio.ErrBufferFull && len(line) < sim.ProcessLineBytesMax {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if err == bufio.ErrBufferFull {
			err = nil
		}
		return line, err
	}
}

func (pr *process) Pause() {
	pr.mu.Lock()
	pr.paused = true
	pr.mu.Unlock()
}

func (pr *process) Resume() {
	pr.mu.Lock()
	pr.paused = false
	pr.mu.Unlock()
	pr.resumed.Broadcast()
}

func (pr *process) Kill() { pr.kill() }

func (pr *process) kill() {
	pr.mu.Lock()
	pr.killed = true
	pr.mu.Unlock()
	pr.resumed.Broadcast()
	// The whole group: a shell's children hold the pipes too.
	syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
}
