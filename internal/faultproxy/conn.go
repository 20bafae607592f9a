package faultproxy

import (
	"io"
	"log"
	"net"
	"sync"
	"time"
)

// listener wraps accepted connections with the proxy's shaping and counts.
type listener struct {
	net.Listener
	p *Proxy
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &shapedConn{Conn: c, p: l.p}
	if r := l.p.opts.BytesPerSecond; r > 0 {
		sc.rd = newLimiter(float64(r))
		sc.wr = newLimiter(float64(r))
	}
	sc.handshake = l.p.opts.Delay
	return sc, nil
}

// shapedConn caps a connection's throughput in each direction, delays its
// first read by the handshake time, and counts its bytes.
type shapedConn struct {
	net.Conn
	p         *Proxy
	rd, wr    *limiter
	once      sync.Once
	handshake time.Duration
}

// ioSlice is the most a shaped connection moves per system call, so the
// cap is smooth.
const ioSlice = 64 << 10

func (c *shapedConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		if c.handshake > 0 {
			time.Sleep(c.handshake)
		}
	})
	if c.rd != nil && len(b) > ioSlice {
		b = b[:ioSlice]
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.p.in.Add(int64(n))
		c.rd.take(n)
	}
	return n, err
}

func (c *shapedConn) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		k := len(b)
		if c.wr != nil && k > ioSlice {
			k = ioSlice
		}
		c.wr.take(k)
		n, err := c.Conn.Write(b[:k])
		written += n
		c.p.out.Add(int64(n))
		if err != nil {
			return written, err
		}
		b = b[k:]
	}
	return written, nil
}

// limiter paces bytes to a rate: it keeps the time at which the bytes
// moved so far are paid for, allowing a 10 ms burst.
type limiter struct {
	mu   sync.Mutex
	rate float64 // bytes per second
	paid time.Time
}

const burst = 10 * time.Millisecond

func newLimiter(rate float64) *limiter { return &limiter{rate: rate} }

// take waits until n more bytes fit the rate. A nil limiter never waits.
func (l *limiter) take(n int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if l.paid.Before(now.Add(-burst)) {
		l.paid = now.Add(-burst)
	}
	l.paid = l.paid.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	wait := l.paid.Sub(now)
	l.mu.Unlock()
	if wait > 0 {
		time.Sleep(wait)
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
