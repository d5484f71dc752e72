package http1

import (
	"strings"
	"testing"
)

// browserRequest is a typical browser page request of about 300 bytes.
const browserRequest = "GET /articles/2024/fast-servers.html?ref=home HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func BenchmarkParseHead(b *testing.B) {
	in := []byte(browserRequest)
	var p Parser
	var r Request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseHead(in, &r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseHeadByteAtATime measures a client that sends one byte per read, with the
// accumulated prefix fed again each time; the cost per byte stays constant.
func BenchmarkParseHeadByteAtATime(b *testing.B) {
	in := []byte(browserRequest)
	var p Parser
	var r Request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		for k := 1; k <= len(in); k++ {
			if _, err := p.ParseHead(in[:k], &r); err != nil && err != ErrNeedMore {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkBodyChunked(b *testing.B) {
	var in []byte
	chunk := []byte(strings.Repeat("x", 1000))
	for range 16 {
		in = AppendChunk(in, chunk)
	}
	in = AppendLastChunk(in, nil)
	var br BodyReader
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		br.Init(&chunkedReq, 0)
		if err := runBody(&br, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendResponseHead(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		out := AppendStatusLine(buf[:0], 1, 200)
		out = AppendDate(out)
		out = AppendHeader(out, "Server", "gale")
		out = AppendHeader(out, "Content-Type", "text/html; charset=utf-8")
		out = AppendHeaderInt(out, "Content-Length", 12345)
		buf = append(out, '\r', '\n')
	}
}
