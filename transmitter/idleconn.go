package transmitter

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// idleConn fails a request once no byte has moved either way for idle, and
// only then: every read and every piece of a write pushes both deadlines
// on, and a read that times out while bytes written earlier are still
// leaving the send queue (a large body on a slow link sits in the socket's
// buffers long after Write returned) waits on. A link that stops moving (a
// blackhole, a peer gone without a reset) is given up after idle.
type idleConn struct {
	net.Conn
	idle time.Duration
	outq atomic.Int64 // bytes in the send queue at the last look; -1: cannot tell
}

// idleWritePiece is the most written under one deadline.
const idleWritePiece = 16 << 10

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c, idle: idle}
	ic.outq.Store(-1)
	return ic
}

func (c *idleConn) Read(p []byte) (int, error) {
	for {
		_ = c.Conn.SetDeadline(time.Now().Add(c.idle)) // a TCP connection supports deadlines
		n, err := c.Conn.Read(p)
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() && c.sending() {
			continue
		}
		return n, err
	}
}

func (c *idleConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		_ = c.Conn.SetDeadline(time.Now().Add(c.idle))
		m, err := c.Conn.Write(p[n:min(len(p), n+idleWritePiece)])
		n += m
		if err != nil {
			return n, err
		}
	}
	if q, ok := sendQueue(c.Conn); ok {
		c.outq.Store(q)
	}
	return n, nil
}

// sending reports whether the send queue shrank since the last look: the
// peer is still taking bytes written earlier.
func (c *idleConn) sending() bool {
	q, ok := sendQueue(c.Conn)
	if !ok {
		return false
	}
	prev := c.outq.Swap(q)
	return q > 0 && prev >= 0 && q < prev
}
