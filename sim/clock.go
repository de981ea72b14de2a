package sim

import "time"

// Clock is a node's view of time.
type Clock interface {
	// Now is the wall clock. It may be skewed against other nodes, drift,
	// and jump forwards or backwards; use it for timestamps, never for
	// measuring intervals.
	Now() time.Time
	// Mono is monotonic time since an arbitrary origin. It never goes back
	// and is what timeouts and latencies are measured with.
	Mono() time.Duration
	// AfterFunc calls f on the node's loop once d of monotonic time has
	// passed. d <= 0 means "as soon as the current callback returns".
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened yet and reports
	// whether it did so.
	Stop() bool
}
