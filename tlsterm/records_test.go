package tlsterm

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordCounter is a net.Conn that counts the TLS records it reads, by type.
type recordCounter struct {
	net.Conn
	mu      sync.Mutex
	pending []byte // bytes of an incomplete record header or body
	skip    int    // body bytes of the current record still to come
	counts  map[byte]int
}

func (r *recordCounter) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := b[:n]; len(p) > 0; {
		if r.skip > 0 {
			k := min(r.skip, len(p))
			r.skip -= k
			p = p[k:]
			continue
		}
		need := 5 - len(r.pending)
		k := min(need, len(p))
		r.pending = append(r.pending, p[:k]...)
		p = p[k:]
		if len(r.pending) == 5 {
			r.counts[r.pending[0]]++
			r.skip = int(r.pending[3])<<8 | int(r.pending[4])
			r.pending = r.pending[:0]
		}
	}
	return n, err
}

func (r *recordCounter) appData() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[23]
}

// TestOneRecordPerResponse: a tiny keep-alive response (head and body) leaves
// the server as one TLS record, not one per write, on TLS 1.3 and 1.2.
func TestOneRecordPerResponse(t *testing.T) {
	e := startTLS(t, hello, nil)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		rc := &recordCounter{Conn: raw, counts: map[byte]int{}}
		c := tls.Client(rc, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "localhost", MinVersion: v, MaxVersion: v})
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		const n = 5
		base := -1
		for i := range n {
			if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			var head strings.Builder
			for !strings.HasSuffix(head.String(), "\r\n\r\n") {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				head.WriteString(line)
			}
			body := make([]byte, len("hello /x"))
			if _, err := br.Read(body); err != nil || string(body) != "hello /x" {
				t.Fatalf("body %q %v", body, err)
			}
			if i == 0 {
				base = rc.appData() // TLS 1.3 session tickets are application-data records too
			}
		}
		if got := rc.appData() - base; got != n-1 {
			t.Errorf("TLS %x: %d application-data records for %d responses, want one each", v, got, n-1)
		}
		c.Close()
	}
}
