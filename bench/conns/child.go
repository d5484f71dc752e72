package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gale-server/gale/bench/internal/wsproto"
)

// runChild opens o.n connections (global indexes o.first onwards), reports, holds them until
// its stdin closes, reports again and closes them.
func runChild(o options) error {
	if err := raiseFileLimit(uint64(o.n) + 64); err != nil {
		return err
	}
	var (
		mu    sync.Mutex // owns conns and errs
		conns = make([]net.Conn, 0, o.n)
		errs  = map[string]int{}
	)
	start := time.Now()
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	for i := range o.n {
		sem <- struct{}{}
		wg.Add(1)
		go func(g int) {
			defer func() { <-sem; wg.Done() }()
			c, err := open(o, g)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[err.Error()]++
				return
			}
			conns = append(conns, c)
		}(o.first + i)
	}
	wg.Wait()
	end := time.Now()

	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(readyReport{OK: len(conns), Errors: errs, StartNS: start.UnixNano(), EndNS: end.UnixNano()}); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin) // the parent closes our stdin when the hold is over
	// No goroutine waits in Read during the hold (a million of them would cost the client
	// gigabytes of stacks): each connection is asked once, now, whether the server closed
	// it or sent anything meanwhile.
	closed := 0
	for _, c := range conns {
		if !stillIdle(c, o.ws) {
			closed++
		}
		c.Close()
	}
	return out.Encode(finalReport{ClosedDuringHold: closed})
}

// sourceAddr returns the local address of connection g: perIP connections per address,
// counting from 127.1.0.1 and leaving out host parts 0 and 255.
func sourceAddr(g, perIP int) *net.TCPAddr {
	ip := g / perIP
	x := ip / 254
	return &net.TCPAddr{IP: net.IPv4(127, byte(1+x/256), byte(x%256), byte(1+ip%254))}
}

// kindError is an error whose text is the kind it is counted under.
type kindError string

func (e kindError) Error() string { return string(e) }

// wsPath is the path connection g upgrades on: -path, followed with -topics N by g mod N,
// so that a path-mode pub/sub hub spreads the connections over N topics.
func wsPath(o options, g int) string {
	if o.topics <= 0 {
		return o.path
	}
	return o.path + strconv.Itoa(g%o.topics)
}

// open connects connection g, sends the request and reads the whole answer.
func open(o options, g int) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   o.timeout,
		LocalAddr: sourceAddr(g, o.perIP),
		KeepAlive: -1, // held connections stay silent
		Control:   bindNoPort,
	}
	c, err := d.Dial("tcp4", o.addr)
	if err != nil {
		return nil, classify("connect", err)
	}
	c.SetDeadline(time.Now().Add(o.timeout))
	br := bufio.NewReaderSize(c, 4096)
	host := o.addr
	if o.h2 {
		if err := h2Request(c, br, host, o.path); err != nil {
			c.Close()
			return nil, err
		}
	} else if o.ws {
		key := wsproto.NewKey()
		offer := ""
		if o.deflate {
			offer = wsproto.DeflateOffer
		}
		if _, err := c.Write(wsproto.UpgradeRequestExt(host, wsPath(o, g), key, offer)); err != nil {
			c.Close()
			return nil, classify("request", err)
		}
		ext, err := wsproto.ReadUpgradeResponseExt(br, key)
		if err != nil {
			c.Close()
			return nil, classify("upgrade", err)
		}
		if o.deflate && !strings.HasPrefix(ext, "permessage-deflate") {
			c.Close()
			return nil, kindError("upgrade:no-permessage-deflate")
		}
	} else if err := get(c, br, host, o.path); err != nil {
		c.Close()
		return nil, err
	}
	// Nothing may follow the upgrade response (get checks its own; HTTP/2 control frames may
	// follow a response).
	if br.Buffered() > 0 && o.ws {
		c.Close()
		return nil, kindError("response:extra-bytes")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// classify names an error by the phase it happened in and a short kind.
func classify(phase string, err error) error {
	var ne net.Error
	kind := ""
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET):
		kind = "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		kind = "addr-not-avail"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		kind = "fd-limit"
	case errors.Is(err, syscall.EPIPE):
		kind = "broken-pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "eof"
	case errors.As(err, &ne) && ne.Timeout():
		kind = "timeout"
	default:
		kind = err.Error()
		if i := strings.LastIndex(kind, ": "); i >= 0 {
			kind = kind[i+2:]
		}
		if len(kind) > 60 {
			kind = kind[:60]
		}
	}
	return kindError(phase + ":" + kind)
}
