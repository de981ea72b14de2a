package checkers

import (
	"net"
	clock "time"
)

func elapsed(start clock.Time) clock.Duration {
	_ = net.IPv4len
	return clock.Since(start)
}
