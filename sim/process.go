package sim

// Processes runs commands on the node, for the collector's exec source.
// Only the real world has them (osenv.Node.Processes): a command's output
// and timing are not the seed's to decide, so the simulated world offers
// none and a component that needs one refuses to start there.
type Processes interface {
	// Start runs argv[0], looked up on the PATH, with the rest as its
	// arguments. Each line of its standard output, and of its standard
	// error (stderr true), goes to onLine on the node's loop, without its
	// newline; a line longer than ProcessLineBytesMax arrives in pieces of
	// about that size.
	// Once both streams ended and the process exited, onExit gets its
	// outcome on the loop: nil for exit status 0.
	Start(argv []string, onLine func(line []byte, stderr bool), onExit func(error)) (Process, error)
}

// Process is a command Processes started. Its methods are called on the
// node's loop.
type Process interface {
	// Pause stops reading the command's output until Resume; the command
	// blocks once the pipe between them is full. Lines already read may
	// still arrive.
	Pause()
	Resume()
	// Kill ends the command and everything it started (its process
	// group); onExit still follows.
	Kill()
}

// ProcessLineBytesMax bounds one line a Process hands on.
const ProcessLineBytesMax = 1 << 20
