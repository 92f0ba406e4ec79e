package bench

import (
	"errors"
	"io"
	"net"
)

// LoopProbe times the path every HTTP request takes twice, alone: a small
// message over a loopback TCP connection to another goroutine and back,
// each side woken by the network poller. On a shared VM its latency drifts
// with the host (waking a virtual CPU, system calls), and the HTTP figures
// with it, while a CPU-bound loop may not.
type LoopProbe struct {
	ln   net.Listener
	conn net.Conn
	buf  []byte
	done chan struct{}
}

// loopProbeSize is the size of the message sent each way.
const loopProbeSize = 64

// NewLoopProbe starts the echoing side on 127.0.0.1 and connects to it.
func NewLoopProbe() (*LoopProbe, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &LoopProbe{ln: ln, buf: make([]byte, loopProbeSize), done: make(chan struct{})}
	go p.echo()
	if p.conn, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		ln.Close()
		<-p.done
		return nil, err
	}
	return p, nil
}

// echo sends back every message of the one connection it accepts.
func (p *LoopProbe) echo() {
	defer close(p.done)
	c, err := p.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	buf := make([]byte, loopProbeSize)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// RoundTrip sends a message and reads it back.
func (p *LoopProbe) RoundTrip() error {
	if _, err := p.conn.Write(p.buf); err != nil {
		return err
	}
	_, err := io.ReadFull(p.conn, p.buf)
	return err
}

// Close stops the echoing side.
func (p *LoopProbe) Close() error {
	err := errors.Join(p.conn.Close(), p.ln.Close())
	<-p.done
	return err
}
