package sim

import (
	"errors"
	"time"
)

// Network is a node's network stack. Addresses are "host:port"; a listener
// binds a port on its own node, whatever host part its address names.
//
// Connections behave as TCP does: inside a live connection frames arrive in
// order or not at all; a partition stalls the connection until a timeout
// resets it; a crash resets every connection of the crashed node.
type Network interface {
	// Listen accepts connections on addr. For every accepted connection
	// accept is called on the node's loop and returns the handler for it.
	Listen(addr string, opts ConnOptions, accept func(c Conn) ConnHandler) (Listener, error)
	// Dial opens a connection to addr. It returns at once; h.OnOpen is
	// called when the connection is established, or h.OnClose with
	// ErrRefused or ErrTimeout when it cannot be. Frames sent before
	// OnOpen are queued.
	Dial(addr string, opts ConnOptions, h ConnHandler) Conn
	// ListenPacket binds a datagram port; onPacket is called on the node's
	// loop for every datagram that arrives. Datagrams may be lost,
	// duplicated or reordered.
	ListenPacket(addr string, onPacket func(from string, p []byte)) (PacketConn, error)
	// SendQueuedBytes is the bytes of frames sent on this node's
	// connections that the network has not yet taken: not yet written to
	// the socket in the real world, not yet delivered in simulation. A
	// server sizes what it answers by it, so that clients that never read
	// cannot make it hold unbounded memory.
	SendQueuedBytes() int
}

// ConnOptions says how a connection's byte stream is cut into frames.
type ConnOptions struct {
	Framing Framing
	// MaxFrameBytes bounds a received frame; a larger one closes the
	// connection with ErrFrameTooLarge. Zero means DefaultMaxFrameBytes.
	MaxFrameBytes int
	// SendQueueBytesMax bounds the bytes queued on one connection; a Send
	// beyond it fails with ErrSendBufferFull. Zero means
	// MaxSendBufferBytes.
	SendQueueBytesMax int
	// WriteTimeout resets a connection with ErrTimeout when its queued
	// frames make no progress onto the network for this long (a peer that
	// stopped reading). Zero means no limit. The simulated network's peers
	// always read, so there only its stall timeout applies.
	WriteTimeout time.Duration
	// QueuedFrameBytesMax bounds the bytes of received frames waiting for
	// the loop, shared by every connection a listener accepts (Kafka's
	// queued.max.request.bytes); a connection whose frame does not fit
	// stops reading until the loop catches up. Zero means
	// DefaultQueuedFrameBytesMax. The simulated network delivers frames as
	// events and ignores it.
	QueuedFrameBytesMax int
}

// Framing is how frames are delimited on the wire.
type Framing uint8

const (
	// FrameLength32 prefixes each frame with its length as a big-endian
	// int32, as Kafka's protocol does. Frames are passed without the
	// prefix.
	FrameLength32 Framing = iota
	// FrameStream carries a raw byte stream (line protocols, HTTP): a
	// received frame is whatever chunk of bytes arrived, with no boundary
	// preserved.
	FrameStream
)

// DefaultMaxFrameBytes bounds frames when ConnOptions.MaxFrameBytes is zero.
const DefaultMaxFrameBytes = 100 << 20

// MaxFrame is the frame bound these options mean.
func (o ConnOptions) MaxFrame() int {
	if o.MaxFrameBytes > 0 {
		return o.MaxFrameBytes
	}
	return DefaultMaxFrameBytes
}

// SendQueueMax is the per-connection send queue bound these options mean.
func (o ConnOptions) SendQueueMax() int {
	if o.SendQueueBytesMax > 0 {
		return o.SendQueueBytesMax
	}
	return MaxSendBufferBytes
}

// DefaultQueuedFrameBytesMax bounds received frames waiting for the loop
// when ConnOptions.QueuedFrameBytesMax is zero.
const DefaultQueuedFrameBytesMax = 256 << 20

// QueuedFramesMax is the queued received frame bound these options mean.
func (o ConnOptions) QueuedFramesMax() int {
	if o.QueuedFrameBytesMax > 0 {
		return o.QueuedFrameBytesMax
	}
	return DefaultQueuedFrameBytesMax
}

// ConnHandler receives a connection's events on the node's loop.
type ConnHandler interface {
	// OnOpen is called once the connection is established: on the dialling
	// side when the peer accepted, on the accepting side right after
	// accept returned this handler.
	OnOpen(c Conn)
	// OnFrame delivers one frame; the handler owns it.
	OnFrame(c Conn, frame []byte)
	// OnClose is called once, when the connection ends: err is nil when the
	// peer closed it gracefully and otherwise says why (ErrReset,
	// ErrTimeout, ErrRefused, ErrFrameTooLarge, ErrSendBufferFull). It is
	// not called after the handler's own Close. The peer of a machine that
	// lost power sees ErrTimeout, or ErrReset once the machine is back.
	OnClose(c Conn, err error)
}

// Conn is one end of a connection.
type Conn interface {
	// Send queues a frame; the connection owns it afterwards. Frames are
	// delivered in order. Send fails with ErrClosed after the connection
	// ended and with ErrSendBufferFull when more than MaxSendBufferBytes
	// (or ConnOptions.SendQueueBytesMax) are queued, in which case the
	// connection is reset and the handler's OnClose follows.
	Send(frame []byte) error
	// Close ends the connection after the queued frames; the peer sees a
	// graceful close.
	Close()
	LocalAddr() string
	RemoteAddr() string
}

// Listener is a bound port.
type Listener interface {
	Close()
	Addr() string
}

// PacketConn is a bound datagram port.
type PacketConn interface {
	// SendTo sends one datagram; p is copied, as a socket copies it.
	SendTo(addr string, p []byte) error
	Close()
	LocalAddr() string
}

// MaxSendBufferBytes bounds the bytes queued on one connection.
const MaxSendBufferBytes = 256 << 20

// Connection errors. Implementations wrap them, so test with errors.Is.
var (
	ErrReset          = errors.New("connection reset")
	ErrTimeout        = errors.New("connection timed out")
	ErrRefused        = errors.New("connection refused")
	ErrFrameTooLarge  = errors.New("frame too large")
	ErrSendBufferFull = errors.New("send buffer full")
	ErrAddrInUse      = errors.New("address already in use")
)
