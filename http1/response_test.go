package http1

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// respOutcome renders what feeding a response stream produced: each head, each body (as
// its bytes), the trailers, and the error or leftover that ended it.
func driveResponses(t testing.TB, lim Limits, in []byte, cuts []int, head bool) string {
	t.Helper()
	p := ResponseParser{Limits: lim}
	var r Response
	var b BodyReader
	var sb strings.Builder
	var buf []byte
	inBody, tunnel := false, false
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if c <= prev && c != len(in) {
			continue
		}
		buf = newBuf(buf, in[prev:c])
		prev = c
		for len(buf) > 0 {
			if tunnel {
				fmt.Fprintf(&sb, "%s", buf)
				buf = buf[len(buf):]
				break
			}
			if !inBody {
				n, err := p.Parse(buf, &r)
				if errors.Is(err, ErrNeedMore) {
					if n != 0 {
						t.Fatalf("ErrNeedMore with n=%d", n)
					}
					break
				}
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || e.Status != 502 {
						t.Fatalf("error %v is not a 502 *Error", err)
					}
					fmt.Fprintf(&sb, " error=%q", e.Reason)
					return sb.String()
				}
				fmt.Fprintf(&sb, " head{%d %d %q cl=%d chunked=%v keep=%v", r.Minor, r.Status, r.Reason, r.ContentLength, r.Chunked, r.KeepAlive)
				for _, h := range r.Headers {
					fmt.Fprintf(&sb, " [%q: %q]", h.Name, h.Value)
				}
				sb.WriteString("}")
				buf = buf[n:]
				if r.Informational() && r.Status != 101 {
					continue
				}
				if r.Status == 101 {
					sb.WriteString(" tunnel=")
					tunnel = true
					continue
				}
				b.InitResponse(&r, head)
				inBody = true
				sb.WriteString(" body=")
			}
			data, used, done, err := b.Next(buf)
			sb.Write(data)
			buf = buf[used:]
			if err != nil {
				fmt.Fprintf(&sb, " bodyerror=%v", err)
				return sb.String()
			}
			if done {
				inBody = false
				for _, h := range b.Trailers() {
					fmt.Fprintf(&sb, " trailer[%q: %q]", h.Name, h.Value)
				}
				sb.WriteString(" end")
				continue
			}
			if used == 0 {
				break
			}
		}
	}
	if inBody {
		// A body error found after the last data of a call is reported by the next.
		if _, _, _, err := b.Next(buf); err != nil {
			fmt.Fprintf(&sb, " bodyerror=%v", err)
			return sb.String()
		}
	}
	if inBody && b.UntilClose() {
		sb.WriteString(" end-at-close")
	} else if inBody {
		sb.WriteString(" truncated")
	}
	fmt.Fprintf(&sb, " leftover=%d", len(buf))
	return sb.String()
}

// allSplits checks that in gives the same outcome whole, split at every byte and one
// byte at a time, and returns it.
func allSplits(t *testing.T, lim Limits, in []byte, head bool) string {
	t.Helper()
	whole := driveResponses(t, lim, in, nil, head)
	for k := 1; k < len(in); k++ {
		if got := driveResponses(t, lim, in, []int{k}, head); got != whole {
			t.Fatalf("split at %d:\n got  %s\n want %s", k, got, whole)
		}
	}
	every := make([]int, len(in))
	for i := range every {
		every[i] = i
	}
	if got := driveResponses(t, lim, in, every, head); got != whole {
		t.Fatalf("byte at a time:\n got  %s\n want %s", got, whole)
	}
	return whole
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name string
		in   string
		head bool
		want string // substrings the outcome must hold, separated by |
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, `head{1 200 "OK" cl=5 chunked=false keep=true ["Content-Length": "5"]}|body=hello end|leftover=0`},
		{"two responses", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nbc", false, `body=a end| 404 |body=bc end leftover=0`},
		{"chunked trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\n wo\r\n0\r\nX-Sum: 42\r\n\r\n", false, `chunked=true|body=hello wo trailer["X-Sum": "42"] end`},
		{"close delimited", "HTTP/1.1 200 OK\r\n\r\nall the rest", false, `cl=-1|body=all the rest end-at-close`},
		{"http10 default close", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, `head{0 200 "OK" cl=0 chunked=false keep=false`},
		{"http10 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, `keep=true`},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, `keep=false`},
		{"head no body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true, `body= end leftover=0`},
		{"head chunked no body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", true, `body= end head{`},
		{"204 no body", "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, `204|body= end| 200 |body=x end`},
		{"304 no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, `body= end leftover=0`},
		{"100 then 200", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, `head{1 100 "Continue"|head{1 200|body=ok end`},
		{"103 then 200", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, `103 "Early Hints" cl=-1 chunked=false keep=true ["Link": "</a.css>; rel=preload"]`},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi", false, "tunnel=\x81\x02hi leftover=0"},
		{"empty reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, `200 ""`},
		{"empty reason with space", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, `200 ""`},
		{"same CL twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false, `body=x end`},
		{"CL conflict", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", false, `error="invalid or conflicting Content-Length in upstream response"`},
		{"CL invalid", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", false, `error="invalid or conflicting`},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false, `error="both Content-Length and Transfer-Encoding`},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, `error="upstream response Transfer-Encoding other than chunked"`},
		{"TE not chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, `error="upstream response Transfer-Encoding`},
		{"TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, `error="upstream response Transfer-Encoding`},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false, `error="upstream response line ends in bare LF"`},
		{"bare LF end", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", false, `error="upstream response line ends in bare LF"`},
		{"obs fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false, `error="malformed field line`},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false, `error="malformed field line`},
		{"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", false, `error="unsupported HTTP version`},
		{"lower case", "http/1.1 200 OK\r\n\r\n", false, `error="malformed status line`},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n", false, `error="invalid status code`},
		{"status letters", "HTTP/1.1 2x0 X\r\n\r\n", false, `error="invalid status code`},
		{"no space after code", "HTTP/1.1 200OK\r\n\r\n", false, `error="malformed status line`},
		{"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", false, `error="malformed status line`},
		{"CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", false, `error="invalid reason phrase`},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, `bodyerror=`},
		{"forbidden trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", false, `bodyerror=`},
		{"truncated length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, `body=abc truncated`},
		{"incomplete head", "HTTP/1.1 200 OK\r\nContent-", false, `leftover=25`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := allSplits(t, Limits{}, []byte(tc.in), tc.head)
			for _, w := range strings.Split(tc.want, "|") {
				if !strings.Contains(got, w) {
					t.Fatalf("outcome %s\nlacks %s", got, w)
				}
			}
		})
	}
}

func TestParseResponseLimits(t *testing.T) {
	lim := Limits{MaxRequestLine: 20, MaxHeaderBytes: 30, MaxHeaderFields: 2}
	for _, in := range []string{
		"HTTP/1.1 200 a very long reason phrase\r\n\r\n",
		"HTTP/1.1 200 a very long reason phrase",
		"HTTP/1.1 200 OK\r\nX-Long: 01234567890123456789012345\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-Long: 01234567890123456789012345",
		"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
	} {
		got := allSplits(t, lim, []byte(in), false)
		if !strings.Contains(got, "error=") {
			t.Errorf("%q: %s, want a limit error", in, got)
		}
	}
}

func TestAppendRequestLine(t *testing.T) {
	got := string(AppendRequestLine([]byte("x"), []byte("GET"), []byte("/a?b")))
	if got != "xGET /a?b HTTP/1.1\r\n" {
		t.Fatalf("%q", got)
	}
	// What the writer produces parses back to the same request.
	b := AppendRequestLine(nil, []byte("POST"), []byte("/up"))
	b = AppendHeader(b, "Host", "o")
	b = AppendHeaderInt(b, "Content-Length", 3)
	b = append(b, "\r\n"...)
	var p Parser
	var r Request
	n, err := p.ParseHead(b, &r)
	if err != nil || n != len(b) || string(r.Method) != "POST" || string(r.Target) != "/up" || r.ContentLength != 3 {
		t.Fatalf("n=%d err=%v req=%+v", n, err, r)
	}
}

func TestParseResponseNoAllocs(t *testing.T) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello")
	var p ResponseParser
	var r Response
	p.Parse(in, &r)
	if a := testing.AllocsPerRun(100, func() { p.Parse(in, &r) }); a != 0 {
		t.Fatalf("%v allocations per parse", a)
	}
}

// FuzzParseResponse checks that any response stream gives the same outcome fed whole, split
// in two and one byte at a time, for GET and HEAD. Seeds live in
// testdata/fuzz/FuzzParseResponse.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false)
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		if len(in) > 2048 {
			return
		}
		for _, lim := range []Limits{{}, smallLimits} {
			whole := driveResponses(t, lim, in, nil, head)
			every := make([]int, len(in))
			for i := range every {
				every[i] = i
			}
			if got := driveResponses(t, lim, in, every, head); got != whole {
				t.Fatalf("byte at a time:\n got  %s\n want %s", got, whole)
			}
			if len(in) > 1 {
				k := 1 + int(in[0])%(len(in)-1)
				if got := driveResponses(t, lim, in, []int{k}, head); got != whole {
					t.Fatalf("split at %d:\n got  %s\n want %s", k, got, whole)
				}
			}
		}
	})
}
