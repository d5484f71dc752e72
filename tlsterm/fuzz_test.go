package tlsterm

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gale-server/gale/internal/testcert"
)

// feederPair is a server tls.Conn over a recordConn in loop mode, after a real
// handshake with a client tls.Conn, plus the client's records for any plaintext.
type feederPair struct {
	raw    *recordConn
	server *tls.Conn
	client *tls.Conn
	toSrv  *bytes.Buffer // what the client writes
	mu     sync.Mutex
}

// clientSide is the client's transport: writes are collected, reads come from
// the server's writes through a pipe.
type clientSide struct {
	net.Conn // the read half (net.Pipe end)
	p        *feederPair
}

func (c *clientSide) Write(b []byte) (int, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.toSrv.Write(b)
}

var feederCert struct {
	once sync.Once
	cert tls.Certificate
	err  error
}

func newFeederPair(tb testing.TB, version uint16) *feederPair {
	feederCert.once.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			feederCert.err = err
			return
		}
		ca, err := testcert.NewCA(dir)
		if err != nil {
			feederCert.err = err
			return
		}
		f, err := ca.Issue("srv", "localhost")
		if err != nil {
			feederCert.err = err
			return
		}
		feederCert.cert, feederCert.err = testcert.KeyPair(f)
	})
	if feederCert.err != nil {
		tb.Fatal(feederCert.err)
	}
	p := &feederPair{toSrv: &bytes.Buffer{}}
	pr, pw := net.Pipe()
	p.raw = newRecordConn(nil, &cpuTokens{c: make(chan struct{}, 1)})
	p.raw.sink = func(b []byte) { pw.SetWriteDeadline(time.Now().Add(5 * time.Second)); pw.Write(b) }
	p.server = tls.Server(p.raw, &tls.Config{Certificates: []tls.Certificate{feederCert.cert}, MinVersion: tls.VersionTLS12, MaxVersion: version, SessionTicketsDisabled: true})
	p.client = tls.Client(&clientSide{Conn: pr, p: p}, &tls.Config{InsecureSkipVerify: true, MaxVersion: version})
	pr.SetDeadline(time.Now().Add(5 * time.Second))
	// The client writes into toSrv; a pump moves it to the server's handshake input.
	done := make(chan error, 1)
	go func() { done <- p.server.Handshake() }()
	cdone := make(chan error, 1)
	go func() { cdone <- p.client.Handshake() }()
	p.raw.cpu.acquire()
	for {
		p.mu.Lock()
		if p.toSrv.Len() > 0 {
			p.raw.push(p.toSrv.Bytes())
			p.toSrv.Reset()
		}
		p.mu.Unlock()
		select {
		case err := <-done:
			if err != nil {
				tb.Fatal(err)
			}
			if err := <-cdone; err != nil {
				tb.Fatal(err)
			}
			p.raw.cpu.release()
			p.raw.onLoop = true
			p.raw.sink = func([]byte) {} // alerts for garbage: nobody reads them
			p.mu.Lock()
			p.raw.hs = append(p.raw.hs, p.toSrv.Bytes()...)
			p.toSrv.Reset()
			p.mu.Unlock()
			return p
		case <-time.After(time.Millisecond):
		}
	}
}

// records encrypts plain with the client.
func (p *feederPair) records(plain []byte) []byte {
	p.client.Write(plain)
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]byte(nil), p.toSrv.Bytes()...)
	p.toSrv.Reset()
	return out
}

// feed gives the server the bytes in pieces cut at splits (each taken mod the
// remaining length) and returns the plaintext read and the first hard error.
func (p *feederPair) feed(in []byte, splits []byte) ([]byte, error) {
	var plain []byte
	buf := make([]byte, maxPlain)
	for i := 0; len(in) > 0; i++ {
		k := len(in)
		if i < len(splits) {
			k = int(splits[i])%len(in) + 1
		}
		p.raw.src, p.raw.off = in[:k], 0
		for {
			n, err := p.server.Read(buf)
			plain = append(plain, buf[:n]...)
			if err != nil {
				if !errors.Is(err, errWouldBlock) {
					return plain, err
				}
				break
			}
		}
		if p.raw.off != k {
			return plain, errors.New("the feeder left input unconsumed")
		}
		in = in[k:]
	}
	return plain, nil
}

func TestFeederSplits(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		p := newFeederPair(t, v)
		msg := bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1000)
		rec := p.records(msg)
		// One byte at a time.
		got, err := p.feed(rec, bytes.Repeat([]byte{0}, len(rec)))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("version %x one byte at a time: %d bytes, %v", v, len(got), err)
		}
		// Split at every position of a short message.
		short := []byte("GET /split HTTP/1.1\r\n\r\n")
		for i := 0; i < 60; i++ {
			rec := p.records(short)
			got, err := p.feed(rec, []byte{byte(i)})
			if err != nil || !bytes.Equal(got, short) {
				t.Fatalf("version %x split %d: %q, %v", v, i, got, err)
			}
		}
	}
}

// FuzzFeeder encrypts the plaintext, feeds the records split as the fuzzer says
// and checks the plaintext comes out whole; then feeds the garbage, which must
// fail the connection with an error (not a panic, not a hang, not plaintext).
func FuzzFeeder(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte{0, 1, 2}, []byte{}, true)
	f.Add([]byte("x"), []byte{}, []byte{23, 3, 3, 0, 5, 1, 2, 3, 4, 5}, false)
	f.Add(bytes.Repeat([]byte("a"), 40000), []byte{200, 7, 255}, []byte{21, 3, 3, 0, 2, 2, 40}, true)
	f.Fuzz(func(t *testing.T, plain, splits, garbage []byte, tls13 bool) {
		v := uint16(tls.VersionTLS12)
		if tls13 {
			v = tls.VersionTLS13
		}
		p := newFeederPair(t, v)
		var got []byte
		if len(plain) > 0 {
			var err error
			got, err = p.feed(p.records(plain), splits)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("plaintext %d bytes in, %d out, %v", len(plain), len(got), err)
			}
		}
		if len(garbage) > 0 {
			out, err := p.feed(garbage, splits)
			if len(out) > 0 {
				t.Fatalf("garbage produced plaintext %q", out)
			}
			_ = err // a partial garbage record is held (no error yet) or fails: both are fine
		}
	})
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "tlsterm-fuzz") }
